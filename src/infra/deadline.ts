// Shutdown steps that must not hang the process: wait for the work, but not past a deadline.

/** True when `work` settled within `ms`; false when the deadline came first (the work goes on). */
export async function withinDeadline(work: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([work.then(() => true), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * A signal that aborts when `parent` does, or after `ms`. Not `AbortSignal.any([parent,
 * AbortSignal.timeout(ms)])`: Node can collect a timeout signal held only by a composite before
 * it fires (nodejs/node#57736), and under memory pressure a step then ran past its timeout.
 * Call `clear()` once the work is over.
 */
export function deadlineSignal(parent: AbortSignal | undefined, ms: number) {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort(new DOMException(`Timed out after ${ms} ms.`, "TimeoutError"));
  }, ms);
  const follow = () => controller.abort(parent?.reason);
  if (parent?.aborted) follow();
  else parent?.addEventListener("abort", follow, { once: true });
  return {
    signal: controller.signal,
    timedOut: () => timedOut,
    clear() {
      clearTimeout(timer);
      parent?.removeEventListener("abort", follow);
    },
  };
}
