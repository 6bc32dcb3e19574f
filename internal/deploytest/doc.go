// Package deploytest checks the deployment files in deploy/ against the code they deploy: the
// image's Containerfile and Dockerfile alike, their default command one the CLI accepts. With
// the e2e build tag (make e2e) it builds the image with Podman and runs it on a real Kafka. It
// has no code of its own.
package deploytest
