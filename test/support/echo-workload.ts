// A one-replica Deployment of the echo workload and its Service (port 80 →
// 8080): the stand-in backend of the integration suites.
export function echoWorkload(namespace: string, name: string, servicePortName = "http"): string {
  return `
apiVersion: apps/v1
kind: Deployment
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  replicas: 1
  selector: { matchLabels: { app: ${name} } }
  template:
    metadata: { labels: { app: ${name} } }
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: echo
        image: trellis.local/echo
        env: [{ name: PORT, value: "8080" }]
        ports: [{ name: web, containerPort: 8080 }]
        readinessProbe: { httpGet: { path: /healthz, port: 8080 }, periodSeconds: 1 }
---
apiVersion: v1
kind: Service
metadata: { name: ${name}, namespace: ${namespace} }
spec:
  selector: { app: ${name} }
  ports: [{ name: ${servicePortName}, port: 80, targetPort: 8080 }]
`;
}
