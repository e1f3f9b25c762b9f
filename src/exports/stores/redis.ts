/** `regscan/stores/redis`: the Redis and Redis Cluster store (ioredis). */
export { RedisStore, type RedisStoreOptions } from "../../cache/stores/redis.js";
