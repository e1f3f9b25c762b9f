/**
 * One HTTP request to a test server on loopback, with node:http (so that any header, method
 * and body can be sent as is), answered with its status, headers and body text.
 */
import { request } from "node:http";

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request of {@link call}. */
export interface Call {
  /** The server's loopback port. */
  port: number;
  method: string;
  /** Path and query, sent as is. */
  path: string;
  /** Default: none. */
  headers?: Record<string, string> | undefined;
  body?: Buffer | string | undefined;
}

/** `method path` to 127.0.0.1:`port`; destroyed (rejecting) after 10 s. */
export function call({ port, method, path, headers = {}, body }: Call): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method, path, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8").on("data", (d: string) => {
        text += d;
      });
      res.on("end", () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }),
      );
    });
    req.on("error", reject);
    req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
    req.end(body);
  });
}
