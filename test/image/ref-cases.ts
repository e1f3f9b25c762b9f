/**
 * The project's own table of image-reference cases, written from the facts of the
 * distribution reference grammar (`docker pull`'s parser, ParseNormalizedNamed) and its
 * Docker Hub normalisation. Each valid case gives the canonical parts; each invalid case a
 * fragment the error message must contain.
 */

const H64 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const D256 = `sha256:${H64}`;
const D384 = `sha384:${"a".repeat(96)}`;
const D512 = `sha512:${"f".repeat(128)}`;
const ID64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";

export interface ValidRefCase {
  input: string;
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
  /** Canonical full reference; defaults to domain/path[:tag][@digest]. */
  canonical?: string;
  familiar: string;
}

export interface InvalidRefCase {
  input: string;
  /** A fragment of the error message saying what is wrong. */
  reason: string;
}

export const validRefCases: ValidRefCase[] = [
  // Docker Hub normalisation
  { input: "alpine", domain: "docker.io", path: "library/alpine", familiar: "alpine" },
  {
    input: "alpine:3.19",
    domain: "docker.io",
    path: "library/alpine",
    tag: "3.19",
    familiar: "alpine:3.19",
  },
  { input: "user/app", domain: "docker.io", path: "user/app", familiar: "user/app" },
  { input: "docker.io/alpine", domain: "docker.io", path: "library/alpine", familiar: "alpine" },
  {
    input: "docker.io/library/alpine",
    domain: "docker.io",
    path: "library/alpine",
    familiar: "alpine",
  },
  { input: "index.docker.io/x", domain: "docker.io", path: "library/x", familiar: "x" },
  {
    input: "index.docker.io/docker/docker",
    domain: "docker.io",
    path: "docker/docker",
    familiar: "docker/docker",
  },
  {
    input: "library/debian",
    domain: "docker.io",
    path: "library/debian",
    familiar: "debian",
  },
  {
    input: "docker.io/library/foo/bar",
    domain: "docker.io",
    path: "library/foo/bar",
    familiar: "library/foo/bar",
  },
  {
    input: "store/foo/bar",
    domain: "docker.io",
    path: "store/foo/bar",
    familiar: "store/foo/bar",
  },
  { input: "other/library", domain: "docker.io", path: "other/library", familiar: "other/library" },
  {
    input: "ubuntu-12.04-base",
    domain: "docker.io",
    path: "library/ubuntu-12.04-base",
    familiar: "ubuntu-12.04-base",
  },
  {
    input: "test_com/foo",
    domain: "docker.io",
    path: "test_com/foo",
    familiar: "test_com/foo",
  },
  {
    input: `docker.io/${ID64}`,
    domain: "docker.io",
    path: `library/${ID64}`,
    familiar: `docker.io/${ID64}`,
  },
  {
    input: "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    domain: "docker.io",
    path: "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    familiar: "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
  },
  // A bare host-looking word without "/" is a Docker Hub name; what follows ":" is a tag.
  {
    input: "localhost:5000",
    domain: "docker.io",
    path: "library/localhost",
    tag: "5000",
    familiar: "localhost:5000",
  },
  {
    input: "test.com:tag",
    domain: "docker.io",
    path: "library/test.com",
    tag: "tag",
    familiar: "test.com:tag",
  },
  {
    input: "192.168.1.1",
    domain: "docker.io",
    path: "library/192.168.1.1",
    familiar: "192.168.1.1",
  },
  {
    input: "foo_bar.com:8080",
    domain: "docker.io",
    path: "library/foo_bar.com",
    tag: "8080",
    familiar: "foo_bar.com:8080",
  },
  {
    input: "foo/foo_bar.com:8080",
    domain: "docker.io",
    path: "foo/foo_bar.com",
    tag: "8080",
    familiar: "foo/foo_bar.com:8080",
  },
  // Domains
  { input: "localhost/x", domain: "localhost", path: "x", familiar: "localhost/x" },
  {
    input: "localhost:5000/a/b:t",
    domain: "localhost:5000",
    path: "a/b",
    tag: "t",
    familiar: "localhost:5000/a/b:t",
  },
  { input: "ghcr.io/a/b", domain: "ghcr.io", path: "a/b", familiar: "ghcr.io/a/b" },
  { input: "test:5000/repo", domain: "test:5000", path: "repo", familiar: "test:5000/repo" },
  {
    input: "test-com:8080/foo",
    domain: "test-com:8080",
    path: "foo",
    familiar: "test-com:8080/foo",
  },
  {
    input: "127.0.0.1:5000/library/debian",
    domain: "127.0.0.1:5000",
    path: "library/debian",
    familiar: "127.0.0.1:5000/library/debian",
  },
  {
    input: "192.168.0.1:8/debian",
    domain: "192.168.0.1:8",
    path: "debian",
    familiar: "192.168.0.1:8/debian",
  },
  {
    input: "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
    domain: "sub-dom1.foo.com",
    path: "bar/baz/quux",
    tag: "some-long-tag",
    familiar: "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
  },
  {
    input: "b.gcr.io/test.example.com/my-app:test.example.com",
    domain: "b.gcr.io",
    path: "test.example.com/my-app",
    tag: "test.example.com",
    familiar: "b.gcr.io/test.example.com/my-app:test.example.com",
  },
  {
    input: "xn--n3h.com:18080/foo",
    domain: "xn--n3h.com:18080",
    path: "foo",
    familiar: "xn--n3h.com:18080/foo",
  },
  // Upper case is allowed in the domain only; an upper-case first component is a domain.
  { input: "Foo/bar", domain: "Foo", path: "bar", familiar: "Foo/bar" },
  { input: "FOO/bar", domain: "FOO", path: "bar", familiar: "FOO/bar" },
  {
    input: "LOCALDOMAIN/library/debian",
    domain: "LOCALDOMAIN",
    path: "library/debian",
    familiar: "LOCALDOMAIN/library/debian",
  },
  {
    input: "Example.COM:443/a",
    domain: "Example.COM:443",
    path: "a",
    familiar: "Example.COM:443/a",
  },
  // IPv6 literals
  { input: "[::1]:5000/repo", domain: "[::1]:5000", path: "repo", familiar: "[::1]:5000/repo" },
  {
    input: "[2001:db8::1]/repo",
    domain: "[2001:db8::1]",
    path: "repo",
    familiar: "[2001:db8::1]/repo",
  },
  {
    input: "[2001:db8:1:2:3:4:5:6]/repo:tag",
    domain: "[2001:db8:1:2:3:4:5:6]",
    path: "repo",
    tag: "tag",
    familiar: "[2001:db8:1:2:3:4:5:6]/repo:tag",
  },
  {
    input: `[2001:db8::1]:5000/repo:tag@${D256}`,
    domain: "[2001:db8::1]:5000",
    path: "repo",
    tag: "tag",
    digest: D256,
    familiar: `[2001:db8::1]:5000/repo:tag@${D256}`,
  },
  {
    input: "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    domain: "[fc00:1:2:3:4:5:6:7]:5000",
    path: "library/debian",
    familiar: "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
  },
  // Path separators
  {
    input: "docker---rules/docker",
    domain: "docker.io",
    path: "docker---rules/docker",
    familiar: "docker---rules/docker",
  },
  {
    input: "dock__er/docker",
    domain: "docker.io",
    path: "dock__er/docker",
    familiar: "dock__er/docker",
  },
  { input: "x/a.b_c-d", domain: "docker.io", path: "x/a.b_c-d", familiar: "x/a.b_c-d" },
  { input: "d/docker", domain: "docker.io", path: "d/docker", familiar: "d/docker" },
  // Tags
  {
    input: "lowercase:Uppercase",
    domain: "docker.io",
    path: "library/lowercase",
    tag: "Uppercase",
    familiar: "lowercase:Uppercase",
  },
  {
    input: "a:_x.y-z",
    domain: "docker.io",
    path: "library/a",
    tag: "_x.y-z",
    familiar: "a:_x.y-z",
  },
  {
    input: `a:${"t".repeat(128)}`,
    domain: "docker.io",
    path: "library/a",
    tag: "t".repeat(128),
    familiar: `a:${"t".repeat(128)}`,
  },
  // Only a bare 64-hex string is an image ID: with a tag or a digest the familiar form
  // needs no domain, as distribution's FamiliarString prints it.
  {
    input: `${ID64}:tag`,
    domain: "docker.io",
    path: `library/${ID64}`,
    tag: "tag",
    familiar: `${ID64}:tag`,
  },
  {
    input: `docker.io/${ID64}:tag`,
    domain: "docker.io",
    path: `library/${ID64}`,
    tag: "tag",
    familiar: `${ID64}:tag`,
  },
  {
    input: `docker.io/library/${ID64}@${D256}`,
    domain: "docker.io",
    path: `library/${ID64}`,
    digest: D256,
    familiar: `${ID64}@${D256}`,
  },
  {
    input: `index.docker.io/${ID64}:v1@${D256}`,
    domain: "docker.io",
    path: `library/${ID64}`,
    tag: "v1",
    digest: D256,
    familiar: `${ID64}:v1@${D256}`,
  },
  {
    input: `docker.io/library/${ID64}`,
    domain: "docker.io",
    path: `library/${ID64}`,
    familiar: `docker.io/${ID64}`,
  },
  {
    input: `${ID64}/app:tag`,
    domain: "docker.io",
    path: `${ID64}/app`,
    tag: "tag",
    familiar: `${ID64}/app:tag`,
  },
  // Digests
  {
    input: `redis@${D256}`,
    domain: "docker.io",
    path: "library/redis",
    digest: D256,
    familiar: `redis@${D256}`,
  },
  {
    input: `busybox:latest@${D256}`,
    domain: "docker.io",
    path: "library/busybox",
    tag: "latest",
    digest: D256,
    familiar: `busybox:latest@${D256}`,
  },
  {
    input: `dmcgowan/myapp@${D384}`,
    domain: "docker.io",
    path: "dmcgowan/myapp",
    digest: D384,
    familiar: `dmcgowan/myapp@${D384}`,
  },
  {
    input: `xn--7o8h.com/myimage:xn--7o8h.com@${D512}`,
    domain: "xn--7o8h.com",
    path: "myimage",
    tag: "xn--7o8h.com",
    digest: D512,
    familiar: `xn--7o8h.com/myimage:xn--7o8h.com@${D512}`,
  },
  // Length: 255 characters of name is the limit, tags do not count.
  {
    input: `a.b/${"a/".repeat(125)}a:tag-puts-this-over-max`,
    domain: "a.b",
    path: `${"a/".repeat(125)}a`,
    tag: "tag-puts-this-over-max",
    familiar: `a.b/${"a/".repeat(125)}a:tag-puts-this-over-max`,
  },
  // Familiar forms keep "docker.io/" where dropping it would change the meaning.
  {
    input: "docker.io/foo.bar/x",
    domain: "docker.io",
    path: "foo.bar/x",
    familiar: "docker.io/foo.bar/x",
  },
  {
    input: "docker.io/localhost/x",
    domain: "docker.io",
    path: "localhost/x",
    familiar: "docker.io/localhost/x",
  },
];

export const invalidRefCases: InvalidRefCase[] = [
  { input: "", reason: "empty" },
  { input: ID64, reason: "64-character hexadecimal" },
  { input: "https://github.com/docker/docker", reason: "invalid domain" },
  { input: "docker/Docker", reason: "must be lowercase" },
  { input: "docker.io/docker/Docker", reason: "must be lowercase" },
  { input: "test:5000/Uppercase/lowercase:tag", reason: "must be lowercase" },
  { input: "Uppercase:tag", reason: "must be lowercase" },
  { input: "-docker", reason: "invalid repository path" },
  { input: "-docker/docker", reason: "invalid repository path" },
  { input: "docker-/docker", reason: "invalid repository path" },
  { input: "-docker.io/docker/docker", reason: "invalid domain" },
  { input: "docker///docker", reason: "empty path component" },
  { input: "docker.io/docker///docker", reason: "empty path component" },
  { input: "docker/", reason: "empty path component" },
  { input: "____/____", reason: "invalid repository path" },
  { input: "_docker/_docker", reason: "invalid repository path" },
  { input: "dock..er/docker", reason: "invalid domain" },
  { input: "x/dock..er", reason: "invalid repository path" },
  { input: "dock_.er/docker", reason: "invalid domain" },
  { input: "x/dock_.er", reason: "invalid repository path" },
  { input: "dock-.er/docker", reason: "invalid domain" },
  { input: "x/dock-.er", reason: "invalid repository path" },
  { input: "dock___er/docker", reason: "invalid repository path" },
  { input: "aa/asdf$$^/aa", reason: "invalid repository path" },
  { input: ":justtag", reason: "empty path component" },
  { input: `@${D256}`, reason: "empty path component" },
  { input: "[fc00::1]", reason: "invalid tag" },
  // A dotted first component is a domain, and "_" is not allowed in a domain.
  { input: "a.b_c-d/e", reason: "invalid domain" },
  { input: "[fc00::1]:5000", reason: "invalid" },
  { input: "[2001:db8::1]:tag", reason: "invalid" },
  { input: "fc00::1:5000/debian", reason: "invalid domain" },
  { input: "[fe80::1%eth0]:5000/debian", reason: "invalid domain" },
  { input: "[fe80::1%@invalidzone]:5000/repo", reason: "invalid" },
  { input: "[2001:db8:3:4::192.0.2.33]:5000/debian", reason: "invalid domain" },
  { input: "[::1]5000/x", reason: 'only ":port" may follow' },
  { input: "[::1/x", reason: "IPv6 address must be" },
  { input: "localhost:abc/x", reason: "port must be a number" },
  { input: "foo.com:/x", reason: "port must be a number" },
  { input: "a-.com/x", reason: "invalid domain" },
  { input: "a..com/x", reason: "invalid domain" },
  { input: "alpine:", reason: "invalid tag" },
  { input: "alpine:-x", reason: "invalid tag" },
  { input: "alpine:.x", reason: "invalid tag" },
  { input: "alpine:a+b", reason: "invalid tag" },
  { input: `alpine:${"t".repeat(129)}`, reason: "invalid tag" },
  { input: "alpine:a:b", reason: "invalid" },
  { input: "repo@sha256:ffffffffffffffffffffffffffffffffff", reason: "invalid digest" },
  { input: `repo@sha256:${H64.toUpperCase()}`, reason: "invalid digest" },
  { input: `repo@sha256:${H64}0`, reason: "invalid digest" },
  { input: `repo@sha512:${H64}`, reason: "invalid digest" },
  { input: `validname@invaliddigest:${H64}`, reason: "unsupported digest algorithm" },
  { input: `repo@SHA256:${H64}`, reason: "unsupported digest algorithm" },
  { input: "repo@", reason: "invalid digest" },
  { input: `repo@${D256}@${D256}`, reason: "invalid digest" },
  { input: `repo@${D256}/x`, reason: "invalid digest" },
  { input: "a b", reason: "invalid" },
  { input: " alpine", reason: "invalid" },
  { input: "alpine\n", reason: "invalid" },
  { input: "ä/b", reason: "invalid" },
  { input: `${"a/".repeat(127)}a:tag`, reason: "more than 255" },
  { input: `a.b/${"a/".repeat(125)}aa`, reason: "more than 255" },
];
