// Kubernetes wire formats for time.

/** metav1.Time: RFC 3339, second precision. */
export function rfc3339(d: Date): string {
  return `${d.toISOString().slice(0, 19)}Z`;
}

/** metav1.MicroTime: RFC 3339 with microseconds. */
export function microTime(d: Date): string {
  return `${d.toISOString().slice(0, 23)}000Z`;
}
