/**
 * regscan's public library API. Everything a user may import is exported here and nowhere
 * else; internal modules are not re-exported.
 */
export { RegscanError } from "./errors.js";
