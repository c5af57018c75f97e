/** hostPort joins a host and a port for a URL or an address: an IPv6 address is put in brackets, "[::1]:8080". */
export function hostPort(host: string, port: number | string): string {
  return `${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}
