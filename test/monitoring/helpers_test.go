package monitoring_test

import (
	b64 "encoding/base64"
	"net/url"
)

func base64(b []byte) string { return b64.StdEncoding.EncodeToString(b) }

func urlEscape(s string) string { return url.QueryEscape(s) }
