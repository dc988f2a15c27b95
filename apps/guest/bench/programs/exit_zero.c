/* The smallest static program: what fork_exec execs. */
int main(void) { return 0; }
