import { describe, expect, test } from "bun:test";
import { isScript, parseShebang } from "./script.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (value: Uint8Array | null | undefined): string | null =>
  value ? new TextDecoder().decode(value) : null;
const parse = (line: string) => {
  const parsed = parseShebang(bytes(line));
  return parsed === null ? null : { interpreter: text(parsed.interpreter), argument: text(parsed.argument) };
};

describe("parseShebang (fs/binfmt_script.c)", () => {
  test("interpreter alone, with leading and trailing blanks", () => {
    expect(parse("#!/bin/sh\necho\n")).toEqual({ interpreter: "/bin/sh", argument: null });
    expect(parse("#! \t/bin/sh \t\n")).toEqual({ interpreter: "/bin/sh", argument: null });
  });

  test("one argument: the rest of the line, inner blanks kept, trailing ones trimmed", () => {
    expect(parse("#!/usr/bin/env python3 -u  -B \t\n")).toEqual({
      interpreter: "/usr/bin/env",
      argument: "python3 -u  -B",
    });
  });

  test("no interpreter name is ENOEXEC (null)", () => {
    expect(parse("#!\n")).toBeNull();
    expect(parse("#!  \t \n")).toBeNull();
    expect(parse(`#!${" ".repeat(300)}`)).toBeNull();
    expect(parse("#")).toBeNull();
    expect(parse("echo hi\n")).toBeNull();
  });

  test("no newline within 256 bytes: a truncated interpreter path is refused, a complete one kept", () => {
    expect(parse(`#!/${"a".repeat(300)}`)).toBeNull();
    const long = parse(`#!/bin/sh ${"x".repeat(300)}`);
    expect(long?.interpreter).toBe("/bin/sh");
    expect(long?.argument).toBe("x".repeat(255 - "#!/bin/sh ".length));
  });

  test("a file shorter than the buffer is NUL-padded: the name ends at the end of the file", () => {
    expect(parse("#!/bin/sh")).toEqual({ interpreter: "/bin/sh", argument: null });
  });

  test("isScript looks at the first two bytes only", () => {
    expect(isScript(bytes("#!"))).toBe(true);
    expect(isScript(bytes("#"))).toBe(false);
    expect(isScript(bytes("\x7fELF"))).toBe(false);
  });
});
