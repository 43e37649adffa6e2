// Package yamlfile decodes modrun's YAML files strictly: unknown fields are
// errors, and every error names the file and line.
package yamlfile
