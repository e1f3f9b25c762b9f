/** `regscan/stores/sqlite`: the embedded default store; loads better-sqlite3 when opened. */
export {
  defaultSqlitePath,
  SqliteStore,
  type SqliteStoreOptions,
} from "../../cache/stores/sqlite.js";
