/**
 * The `Link` header parser: which next page a listing follows, and which next links are
 * refused (another origin, user info) so that credentials never leave the registry.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { nextLink, nextPageOf } from "../../../src/registry/http/link-header.js";

const req = "https://registry.example.com/v2/team/app/tags/list?n=100";

describe("nextLink", () => {
  it("resolves a relative next link as distribution sends it", () => {
    const next = nextLink('</v2/team/app/tags/list?last=b%2Cc&n=100>; rel="next"', req);
    assert.equal(next?.href, "https://registry.example.com/v2/team/app/tags/list?last=b%2Cc&n=100");
  });

  it("accepts an absolute same-origin link, unquoted rel, and rel lists, case-insensitively", () => {
    assert.equal(
      nextLink("<https://registry.example.com/v2/x/tags/list?last=a>; REL=Next", req)?.pathname,
      "/v2/x/tags/list",
    );
    assert.equal(
      nextLink('</v2/x/tags/list?last=z>; title="a, b; c"; rel="prefetch next"', req)?.search,
      "?last=z",
    );
  });

  it("picks rel=next among several link-values and several headers", () => {
    const h = '</first>; rel="first", </v2/x/tags/list?last=m&n=2>; rel="next", </prev>; rel=prev';
    assert.equal(nextLink(h, req)?.search, "?last=m&n=2");
    assert.equal(nextLink(['</a>; rel="prev"', '</b>; rel="next"'], req)?.pathname, "/b");
  });

  it("a comma inside <...> does not split link-values", () => {
    assert.equal(nextLink('</v2/x/tags/list?last=a,b>; rel="next"', req)?.search, "?last=a,b");
  });

  it("returns undefined without a next link", () => {
    assert.equal(nextLink(undefined, req), undefined);
    assert.equal(nextLink(null, req), undefined);
    assert.equal(nextLink("", req), undefined);
    assert.equal(nextLink('</x>; rel="prev"', req), undefined);
    assert.equal(nextLink("garbage", req), undefined);
    assert.equal(nextLink("</x", req), undefined);
  });

  it("refuses next links to another origin or carrying userinfo", () => {
    for (const h of [
      '<https://evil.example.com/v2/x/tags/list>; rel="next"',
      '<http://registry.example.com/v2/x/tags/list>; rel="next"',
      '<https://registry.example.com:8443/v2/x/tags/list>; rel="next"',
      '<//evil.example.com/v2/x>; rel="next"',
      '<https://u:p@registry.example.com/v2/x>; rel="next"',
    ]) {
      assert.equal(nextLink(h, req), undefined, h);
    }
  });

  it("property: never throws, and any URL returned is same-origin", () => {
    const unit = fc.constantFrom(...'<>;,=" /:?&relnxtREL.h@'.split(""));
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.string({ unit, maxLength: 60 })), (h) => {
        const next = nextLink(h, req);
        if (next !== undefined) assert.equal(next.origin, "https://registry.example.com");
      }),
      { numRuns: 2000 },
    );
  });
});

describe("a next link without the request's port (Nexus)", () => {
  const req = "http://nexus.example.com:8082/v2/x/tags/list?n=1000";
  it("is the request's own origin: the port is put back", () => {
    for (const h of [
      '<http://nexus.example.com/v2/x/tags/list?last=a>; rel="next"',
      '<http://nexus.example.com:80/v2/x/tags/list?last=a>; rel="next"',
      '<//nexus.example.com/v2/x/tags/list?last=a>; rel="next"',
    ]) {
      assert.equal(
        nextLink(h, req)?.href,
        "http://nexus.example.com:8082/v2/x/tags/list?last=a",
        h,
      );
    }
  });
  it("only then: another host, scheme or explicit port stays another origin", () => {
    for (const [h, origin] of [
      ['<http://other.example.com/v2/x/tags/list>; rel="next"', "http://other.example.com"],
      ['<https://nexus.example.com/v2/x/tags/list>; rel="next"', "https://nexus.example.com"],
      [
        '<http://nexus.example.com:9000/v2/x/tags/list>; rel="next"',
        "http://nexus.example.com:9000",
      ],
      ['<http://nexus.example.com.evil/v2/x>; rel="next"', "http://nexus.example.com.evil"],
    ] as const) {
      const next = nextPageOf(h, req);
      assert.ok(next !== undefined && "unusable" in next, h);
      assert.equal(next.unusable, `next link is on another origin (${origin})`);
    }
    // A request on the default port has no port to lose.
    const https = nextPageOf(
      '<https://nexus.example.com:8443/v2/x>; rel="next"',
      "https://nexus.example.com/v2/x/tags/list",
    );
    assert.ok(https !== undefined && "unusable" in https);
  });
});

describe("nextPageOf", () => {
  const req = "https://registry.example.com/v2/x/tags/list?n=100";
  it("tells a missing next link from one that may not be followed", () => {
    assert.equal(nextPageOf(undefined, req), undefined);
    assert.equal(nextPageOf('</x>; rel="prev"', req), undefined);
    const ok = nextPageOf('</v2/x/tags/list?last=a>; rel="next"', req);
    assert.ok(ok !== undefined && "url" in ok);
    assert.equal(ok.url.search, "?last=a");
    for (const [h, why] of [
      ['<https://evil.example/v2/x>; rel="next"', /another origin \(https:\/\/evil\.example\)/],
      ['<https://u:p@registry.example.com/v2/x>; rel="next"', /user info/],
      ['<http://[bad>; rel="next"', /not a URL/],
      [`</v2/x?last=${"a".repeat(20_000)}>; rel="next"`, /Link header over/],
    ] as const) {
      const next = nextPageOf(h, req);
      assert.ok(next !== undefined && "unusable" in next, h.slice(0, 60));
      assert.match(next.unusable, why);
    }
  });
});
