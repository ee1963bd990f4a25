/** A failure the stack explains itself: the CLI prints its message without a stack trace. */
export class StackError extends Error {}
