package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/readocr/readocr/service/internal/apikey"
	"github.com/readocr/readocr/service/internal/ratelimit"
)

// keyCommand is `readocr key new --id team-a --scopes ocr,jobs`: it makes a key, prints it
// once (it is stored nowhere) and the line that adds it to the key file.
func keyCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "new" {
		fmt.Fprintln(stderr, "usage: readocr key new --id ID --scopes ocr,jobs [--rate N --burst N --pages N --period 24h]")
		return 2
	}
	fs := flag.NewFlagSet("readocr key new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	id := fs.String("id", "", "the key's id: who holds it (logs and metrics show it; 1-64 of A-Z a-z 0-9 _ -)")
	scopes := fs.String("scopes", "", "what it may do: ocr (POST /read_ocr), jobs (/jobs), admin (everything, every key's jobs)")
	var p ratelimit.Policy
	fs.Float64Var(&p.Rate, "rate", 0, "requests per second (0: the file's default, else none)")
	fs.IntVar(&p.Burst, "burst", 0, "requests at once (default: the rate, at least 1)")
	fs.Int64Var(&p.Pages, "pages", 0, "pages per period (0: the file's default, else none)")
	fs.DurationVar(&p.Period, "period", 0, "the page quota's period (default 24h: UTC days)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	sc, err := apikey.ParseScopes(*scopes)
	if err == nil {
		var secret string
		var k apikey.Key
		if secret, k, err = apikey.New(*id, sc, p); err == nil {
			fmt.Fprintf(stdout, "# The key for %s (shown once, stored nowhere: give it to its holder now):\n%s\n", *id, secret)
			fmt.Fprintf(stdout, "# Add this line under \"keys:\" in the key file (--api-keys); it is read again within --api-keys-reload:\n%s\n", k.Line())
			return 0
		}
	}
	fmt.Fprintln(stderr, "readocr key new:", strings.TrimPrefix(err.Error(), "apikey: "))
	return 2
}
