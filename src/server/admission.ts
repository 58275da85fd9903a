// Admission control for WebSocket connects: at most `active` credential checks at a time, the
// rest wait in a bounded queue, and past it a connect is refused at once (close 1013, retry
// later). A storm of thousands of connects then costs a steady trickle of database and Redis
// calls instead of all of them at once, and the event loop stays free for the timers and
// requests that share it.
export interface Admission {
  /** Resolves with a release function, or null when the queue is full. */
  enter(): Promise<(() => void) | null>;
  waiting(): number;
}

export function createAdmission(active: number, queued: number): Admission {
  let running = 0;
  const queue: Array<() => void> = [];
  const release = () => {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      // The slot passes straight to the next in line.
      const next = queue.shift();
      if (next) next();
      else running--;
    };
  };
  return {
    async enter() {
      if (running < active) {
        running++;
        return release();
      }
      if (queue.length >= queued) return null;
      await new Promise<void>((resolve) => queue.push(resolve));
      return release();
    },
    waiting: () => queue.length,
  };
}
