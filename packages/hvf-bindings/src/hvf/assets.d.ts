/** `import path from "./x.c" with { type: "file" }`: Bun gives the file's path (embedded when compiled). */
declare module "*.c" {
  const path: string;
  export default path;
}
