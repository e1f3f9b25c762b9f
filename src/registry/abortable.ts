/**
 * The abort helpers now live in the neutral src/abort.ts; this re-export keeps the transport
 * files that still name this path compiling until their import lines move too.
 */
export { abortableSleep, raceAbort, withTimeout } from "../abort.js";
