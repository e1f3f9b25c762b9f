/**
 * The HTTP API's endpoints: which one a request path names and which methods it answers,
 * kept apart from the handlers so that 404, 405 and `OPTIONS` come from one table.
 */

/** Which endpoint a path is, the methods it answers, and the path after its prefix. */
export interface RouteMatch {
  /** The endpoint, also the `route` label of `regscan_api_requests_total`. */
  route:
    | "healthz"
    | "readyz"
    | "metrics"
    | "repositories"
    | "events"
    | "refresh"
    | "repository"
    | "image"
    | "webhook";
  /** The methods it answers (`OPTIONS` aside, which every endpoint answers). */
  methods: readonly string[];
  /** The still percent-encoded path after `/v1/repositories/`, `/v1/images/` or `/v1/webhooks/`. */
  rest: string;
}

const READ = ["GET", "HEAD"] as const;

/** The endpoints without a parameter in their path, made once (every request looks here). */
const FIXED: ReadonlyMap<string, RouteMatch> = new Map(
  (
    [
      ["/healthz", "healthz"],
      ["/readyz", "readyz"],
      ["/metrics", "metrics"],
      ["/v1/repositories", "repositories"],
    ] as const
  ).map(([path, route]) => [path, Object.freeze({ route, methods: READ, rest: "" })]),
);

/** The endpoint `path` names, or `undefined`; `method` decides only `.../refresh`. */
export function matchRoute(method: string, path: string): RouteMatch | undefined {
  const fixed = FIXED.get(path);
  if (fixed !== undefined) return fixed;
  // An event stream has no body to leave out, so HEAD is not offered.
  if (path === "/v1/events") return { route: "events", methods: ["GET"], rest: "" };
  const repositories = "/v1/repositories/";
  if (path.startsWith(repositories) && path.length > repositories.length) {
    const rest = path.slice(repositories.length);
    // A repository may itself be named `.../refresh`: only POST makes it the refresh action.
    if (rest.endsWith("/refresh")) {
      return method === "POST"
        ? { route: "refresh", methods: ["POST"], rest }
        : { route: "repository", methods: [...READ, "POST"], rest };
    }
    return { route: "repository", methods: READ, rest };
  }
  const webhooks = "/v1/webhooks/";
  if (path.startsWith(webhooks) && path.length > webhooks.length)
    return { route: "webhook", methods: ["POST"], rest: path.slice(webhooks.length) };
  const images = "/v1/images/";
  if (path.startsWith(images) && path.length > images.length)
    return { route: "image", methods: READ, rest: path.slice(images.length) };
  return undefined;
}
