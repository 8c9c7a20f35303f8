// Unstable: the process-wide plumbing @phaseflag/local shares with phaseflag's private test harness (one exit
// hook, one signal listener and one registry per process, whichever copy of either package is loaded). Not for
// users; it may change in any release.
export { onProcessExit, reapAfterExit } from './process-exit.js';
export { processState, processSlot, type ProcessState } from './process-state.js';
export { findFreePort } from './free-port.js';
export { serverOsUser, type OsUser } from './os-user.js';
export { readPostmasterPid } from './postmaster-pid.js';
export {
  embeddedBinaries,
  runnableBinaries,
  type EmbeddedBinaries,
  type ShippedBinaries,
} from './embedded-binaries.js';
export { messageOf } from './errors.js';
export { onSignalStop } from './process-exit.js';
