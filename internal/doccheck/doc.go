// Package doccheck lists the Markdown documentation (DocsMarkdown) and, in its tests, checks
// what is not about pipelines: relative links and anchors resolve, ARCHITECTURE.md's lines
// stay short. The YAML examples are checked in pipeline/docs_test.go, where the validator is.
package doccheck
