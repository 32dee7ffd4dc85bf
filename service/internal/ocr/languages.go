package ocr

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/readocr/readocr/service/internal/failure"
)

// Errors about languages, mapped to HTTP statuses by the API layer.
var (
	ErrInvalidLang     = failure.New(failure.InvalidLang, "invalid lang")
	ErrUnknownLanguage = failure.New(failure.UnknownLanguage, "unknown language")
)

// MaxLanguages bounds a "+" list: each language is a model to load and run.
const MaxLanguages = 8

var langPattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}(\+[A-Za-z0-9_]{1,32})*$`)

// tessdataCandidates are where distributions install the models, newest first.
var tessdataCandidates = []string{
	"/usr/share/tesseract-ocr/5/tessdata",
	"/usr/share/tesseract-ocr/4.00/tessdata",
	"/usr/share/tessdata",
	"/usr/local/share/tessdata",
}

// FindTessdata returns dir if set, else $TESSDATA_PREFIX, else the first candidate directory
// that holds a .traineddata file.
func FindTessdata(dir string) (string, error) {
	if dir == "" {
		dir = os.Getenv("TESSDATA_PREFIX")
	}
	if dir != "" {
		if _, err := installedLanguages(dir); err != nil {
			return "", err
		}
		return dir, nil
	}
	for _, d := range tessdataCandidates {
		if langs, err := installedLanguages(d); err == nil && len(langs) > 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("no tessdata directory found (looked in %s); install tesseract-ocr-eng or set TESSDATA_PREFIX",
		strings.Join(tessdataCandidates, ", "))
}

// installedLanguages lists the recognition models in dir ("osd" is orientation detection, not
// a language, and is left out).
func installedLanguages(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.traineddata"))
	if err != nil {
		return nil, err
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .traineddata files in %s", dir)
	}
	var langs []string
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".traineddata")
		if name != "osd" {
			langs = append(langs, name)
		}
	}
	sort.Strings(langs)
	return langs, nil
}

// checkLang validates a "+"-joined language list against the installed models before Tesseract
// sees it (Tesseract's own error path for unknown languages is noisy and was a buffer overflow).
func checkLang(lang string, installed map[string]bool) error {
	if len(lang) > MaxLanguages*33 || !langPattern.MatchString(lang) {
		return failure.Detail(ErrInvalidLang, "%.64q is not a list of language codes joined with '+' (e.g. eng or eng+deu)", lang)
	}
	parts := strings.Split(lang, "+")
	if len(parts) > MaxLanguages {
		return failure.Detail(ErrInvalidLang, "%d languages, at most %d", len(parts), MaxLanguages)
	}
	var unknown []string
	for _, p := range parts {
		if !installed[p] {
			unknown = append(unknown, p)
		}
	}
	if len(unknown) > 0 {
		return failure.Detail(ErrUnknownLanguage, "%s not installed (see GET /languages)", strings.Join(unknown, ", "))
	}
	return nil
}
