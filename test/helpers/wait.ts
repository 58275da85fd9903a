// Waiting for state the server reaches in the background (an analysis, a run): ask again
// until it is there. Each check is a real request; nothing sleeps.

export async function until<T>(check: () => Promise<T>, done: (value: T) => boolean, attempts = 100_000): Promise<T> {
  for (let i = 0; i < attempts; i++) {
    const value = await check();
    if (done(value)) return value;
  }
  throw new Error("condition never met");
}
