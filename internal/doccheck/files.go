package doccheck

import (
	"io/fs"
	"path/filepath"
	"strings"
)

// DocsMarkdown lists the Markdown files under docs/ of the repository at root, as paths
// relative to it with forward slashes.
func DocsMarkdown(root string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, _ := filepath.Rel(root, path)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	return files, err
}
