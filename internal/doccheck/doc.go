// Package doccheck holds the checks of the Markdown documentation that are not about
// pipelines: relative links and anchors resolve, ARCHITECTURE.md's lines stay short. The YAML
// examples are checked in pipeline/docs_test.go, where the validator is.
package doccheck
