/**
 * `regscan/daemon`: what `regscan serve` is made of, for programs that embed it: the daemon,
 * its configuration (schema, loading, masking), the HTTP API server and the image sources.
 * Loads the YAML parser and zod; the Kubernetes client only when its source starts.
 */
export { ConfigError, type ConfigProblem } from "../config/errors.js";
export { type LoadConfigOptions, type LoadedConfig, loadConfig } from "../config/load.js";
export { formatConfig, maskedConfig } from "../config/mask.js";
export { type Config, configSchema } from "../config/schema.js";
export { RequiredProviderError } from "../daemon/credential-sources.js";
export { Daemon, type DaemonOptions, ListenError, NoImagesError } from "../daemon/daemon.js";
export { ApiServer, type ApiServerOptions } from "../server/api-server.js";
export { SharedAnswers, type SharedAnswersOptions } from "../server/shared-answers.js";
export type { WarmerControl } from "../server/warmer-control.js";
export { DEFAULT_IMAGE_EXCLUDES, ImageFilter } from "../sources/image-glob.js";
export { combineSources, type ImageSource, StaticSource } from "../sources/image-source.js";
export { ImagesFileSource } from "../sources/images-file-source.js";
export { KubernetesSource, KubernetesSourceError } from "../sources/kubernetes-source.js";
