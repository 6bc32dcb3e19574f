// Package doccheck lists the Markdown documentation (DocsMarkdown) and, in its tests, holds
// the checks of it that are not about
// pipelines: relative links and anchors resolve, ARCHITECTURE.md's lines stay short. The YAML
// examples are checked in pipeline/docs_test.go, where the validator is.
package doccheck
