// "smiley" → { host: "smiley", port: 80 }; "smiley:8000" → port 8000; "[::1]:8000" → host "::1".
export function parseHostPort(service: string, defaultPort: number): { host: string; port: number } {
  const url = new URL(`http://${service}`);
  return { host: url.hostname.replace(/^\[|\]$/g, ""), port: url.port ? Number(url.port) : defaultPort };
}
