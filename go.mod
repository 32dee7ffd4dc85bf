module github.com/readocr/readocr

go 1.26.8

require (
	code.dny.dev/ssrf v0.3.0 // indirect
	github.com/disintegration/imaging v1.6.2 // indirect
	github.com/getkin/kin-openapi v0.153.0 // indirect
	github.com/go-chi/chi/v5 v5.5.0 // indirect
	github.com/kballard/go-shellquote v0.0.0-20180428030007-95032a82bc51 // indirect
	github.com/otiai10/gosseract/v2 v2.4.1 // indirect
	github.com/prometheus/client_golang v1.25.0 // indirect
	github.com/rwcarlsen/goexif v0.0.0-20190401172101-9e8deecbddbd // indirect
	golang.org/x/image v0.48.0 // indirect
)

replace github.com/otiai10/gosseract/v2 => ./third_party/gosseract
