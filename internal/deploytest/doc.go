// Package deploytest checks the deployment files in deploy/ against the code they deploy: the
// image's Containerfile and Dockerfile, the Docker Compose file and the Kubernetes manifests
// (rendered with kubectl kustomize) — their commands are the CLI's, their probes the metrics
// server's paths, their grace periods longer than the drain, their pipeline files valid. With the
// e2e build tag (make e2e) it builds the image with Podman and runs it on a real Kafka. It has no
// code of its own.
package deploytest
