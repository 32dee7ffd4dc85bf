// Package api holds the service's contract: the OpenAPI document that the handlers serve and
// that the tests validate every response against.
package api

import _ "embed"

// OpenAPIYAML is the OpenAPI 3 document of the HTTP API.
//
//go:embed openapi.yaml
var OpenAPIYAML []byte
