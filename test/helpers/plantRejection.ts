// Preloaded into a server process by a test: on SIGUSR2, a promise rejects with no handler,
// the kind of bug the process-level guard must survive (a Redis publish once did this).
process.on("SIGUSR2", () => {
  void Promise.reject(new Error("planted by the test"));
});
