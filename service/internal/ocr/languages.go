package ocr

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/readocr/readocr/service/internal/failure"
)

// Errors about languages, mapped to HTTP statuses by the API layer.
var (
	ErrInvalidLang     = failure.New(failure.InvalidLang, "invalid lang")
	ErrUnknownLanguage = failure.New(failure.UnknownLanguage, "unknown language")
)

// MaxLanguages bounds a "+" list: each language is a model to load and run on every line
// (--max-languages may lower it, and with it the memory each worker keeps for models).
const MaxLanguages = 10

// DefaultLangpackDir is where language packs are looked for when no directory is configured:
// the Deployment's emptyDir, `docker run`'s volume. Missing, it means no packs.
const DefaultLangpackDir = "/langpacks"

// packDepth is how deep under the pack directory models are found: <dir>/deu.traineddata
// (packs copied together), <dir>/<pack>/... and <dir>/<pack>/script/... (one directory per
// pack, as image volumes mount them).
const packDepth = 3

// osdName is Tesseract's orientation and script detection model: used by --psm 0 and 1,
// never a language.
const osdName = "osd"

var modelNamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)

// Model is one .traineddata file.
type Model struct {
	Name   string `json:"name"`             // what lang= takes: deu, chi_sim, Latin
	Type   string `json:"type"`             // "language", or "script" for a script model
	Title  string `json:"title,omitempty"`  // English name, for models Tesseract publishes
	Script string `json:"script,omitempty"` // the writing system it reads
	Source string `json:"source"`           // "image" (--tessdata) or "pack" (--langpacks)
	Size   int64  `json:"size"`             // the file's bytes
	// Memory is what a worker holds to keep the model loaded, measured at start.
	Memory  int64  `json:"memory,omitempty"`
	Problem string `json:"problem,omitempty"` // why it cannot be used
	path    string
}

// LanguagesConfig says where models are.
type LanguagesConfig struct {
	TessdataDir string // the image's models ("": $TESSDATA_PREFIX, else the distribution's)
	LangpackDir string // language packs ("": DefaultLangpackDir when it exists)
	// ProbeMemory is the most a probe process may use while it loads one model (0: 1 GiB).
	ProbeMemory int64
	Logger      *slog.Logger
}

// Languages is what models the service can load: the image's and the packs', each checked
// and measured once at start (probe.go), none downloaded.
type Languages struct {
	tessdata string
	packs    string
	usable   map[string]*Model
	osd      *Model
	unusable []Model
}

// OpenLanguages finds the models, checks each file and measures what each costs loaded (in a
// process of its own: a corrupt model can abort Tesseract). A model that fails is listed as
// unusable and logged; the others are served.
func OpenLanguages(ctx context.Context, cfg LanguagesConfig) (*Languages, error) {
	log := cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler))
	dir, err := FindTessdata(cfg.TessdataDir)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil { // the worker's directory links to the files
		return nil, err
	}
	l := &Languages{tessdata: dir, usable: map[string]*Model{}}
	models := scanModels(dir, "image", 1, log)
	if l.packs, err = langpackDir(cfg.LangpackDir); err != nil {
		return nil, err
	}
	if l.packs != "" {
		models = append(models, scanModels(l.packs, "pack", packDepth, log)...)
	}
	seen := map[string]*Model{}
	var checked []*Model
	for _, m := range models {
		if first := seen[m.Name]; first != nil {
			log.Warn("language model ignored: another has its name", "model", m.path, "kept", first.path)
			continue
		}
		seen[m.Name] = m
		if m.Problem == "" {
			m.Problem = checkModelFile(m.path, m.Name == osdName)
		}
		checked = append(checked, m)
	}
	probeModels(ctx, checked, cmp.Or(cfg.ProbeMemory, 1<<30), log)
	for _, m := range checked {
		switch {
		case m.Problem != "":
			log.Error("language model unusable", "model", m.Name, "file", m.path, "problem", m.Problem)
			l.unusable = append(l.unusable, *m)
		case m.Name == osdName:
			l.osd = m
		default:
			l.usable[m.Name] = m
		}
	}
	if len(l.usable) == 0 {
		return nil, fmt.Errorf("no usable language model in %s (or %s)", dir, cmp.Or(l.packs, "a language pack directory"))
	}
	return l, nil
}

// langpackDir resolves the pack directory: an explicit one must exist; the default may not.
func langpackDir(dir string) (string, error) {
	if dir == "" {
		if fi, err := os.Stat(DefaultLangpackDir); err == nil && fi.IsDir() {
			return DefaultLangpackDir, nil
		}
		return "", nil
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("language packs: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("language packs: %s is not a directory", dir)
	}
	return filepath.Abs(dir)
}

// scanModels lists the .traineddata files under dir, at most depth levels down, skipping
// hidden entries (a copy in progress) and anything Tesseract could not be given as a name.
func scanModels(dir, source string, depth int, log *slog.Logger) []*Model {
	var out []*Model
	add := func(path string) {
		name := strings.TrimSuffix(filepath.Base(path), ".traineddata")
		fi, err := os.Stat(path) // follows links: a pack may link its files
		if err != nil || !fi.Mode().IsRegular() {
			return
		}
		if !modelNamePattern.MatchString(name) {
			log.Warn("language model ignored: not a model name (A-Z a-z 0-9 _)", "file", path)
			return
		}
		m := &Model{Name: name, Type: "language", Source: source, Size: fi.Size(), path: path}
		if isScriptModel(name) || filepath.Base(filepath.Dir(path)) == "script" {
			m.Type = "script"
		}
		info := modelInfos[name]
		m.Title, m.Script = info.title, info.script
		out = append(out, m)
	}
	if depth == 1 { // the image's directory: its models, and upstream's script/ subdirectory
		for _, pattern := range []string{"*.traineddata", "script/*.traineddata"} {
			files, _ := filepath.Glob(filepath.Join(dir, pattern))
			for _, f := range files {
				add(f)
			}
		}
		return out
	}
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, path)
		if strings.HasPrefix(d.Name(), ".") || strings.Count(rel, string(filepath.Separator)) >= depth {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if strings.HasSuffix(d.Name(), ".traineddata") {
			add(path)
		}
		return nil
	})
	return out
}

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
		if files, _ := filepath.Glob(filepath.Join(dir, "*.traineddata")); len(files) == 0 {
			return "", fmt.Errorf("no .traineddata files in %s", dir)
		}
		return dir, nil
	}
	for _, d := range tessdataCandidates {
		if files, _ := filepath.Glob(filepath.Join(d, "*.traineddata")); len(files) > 0 {
			return d, nil
		}
	}
	return "", fmt.Errorf("no tessdata directory found (looked in %s); install tesseract-ocr-eng or set TESSDATA_PREFIX",
		strings.Join(tessdataCandidates, ", "))
}

// Names returns what lang= accepts, in Tesseract's order (`tesseract --list-langs`).
func (l *Languages) Names() []string {
	out := make([]string, 0, len(l.usable))
	for name := range l.usable {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Models returns the usable models, by name.
func (l *Languages) Models() []Model {
	out := make([]Model, 0, len(l.usable))
	for _, name := range l.Names() {
		out = append(out, *l.usable[name])
	}
	return out
}

// Unusable returns the models found that cannot be used, with why.
func (l *Languages) Unusable() []Model { return append([]Model{}, l.unusable...) }

// PackDir returns the language pack directory in use ("": none).
func (l *Languages) PackDir() string { return l.packs }

// Memory returns what a worker holds to keep lang's models loaded ("+"-joined, checked).
func (l *Languages) Memory(lang string) int64 {
	var n int64
	for _, name := range strings.Split(lang, "+") {
		if m := l.usable[name]; m != nil {
			n += m.Memory
		}
	}
	return n
}

// WorkerModelMemory is what one worker may hold in models: the max costliest models at once
// (the largest request it can be given), and the orientation model, which a request with
// --psm 0 or 1 adds. Workers evict the least recently used models to stay within it.
func (l *Languages) WorkerModelMemory(max int) int64 {
	costs := make([]int64, 0, len(l.usable))
	for _, m := range l.usable {
		costs = append(costs, m.Memory)
	}
	slices.SortFunc(costs, func(a, b int64) int { return cmp.Compare(b, a) })
	var n int64
	for _, c := range costs[:min(max, len(costs))] {
		n += c
	}
	return n + l.OSDMemory()
}

// OSDMemory is what the orientation model costs a client that uses it (0 without one).
func (l *Languages) OSDMemory() int64 {
	if l.osd == nil {
		return 0
	}
	return l.osd.Memory
}

// Parse checks a "+"-joined list of at most max models against the usable ones and returns it
// as Tesseract takes it (upstream's "script/Latin" is "Latin" here; the order is kept: the
// first language leads).
func (l *Languages) Parse(lang string, max int) (string, error) {
	if len(lang) > max*40 {
		return "", failure.Detail(ErrInvalidLang, "lang is %d bytes: at most %d names of models joined with '+'", len(lang), max)
	}
	parts := strings.Split(lang, "+")
	var unknown []string
	for i, p := range parts {
		p = strings.TrimPrefix(p, "script/")
		if !modelNamePattern.MatchString(p) {
			return "", failure.Detail(ErrInvalidLang, "%.64q is not a list of model names joined with '+' (e.g. eng, deu+eng, Latin)", lang)
		}
		if slices.Contains(parts[:i], p) {
			return "", failure.Detail(ErrInvalidLang, "%s is named twice in %.64q", p, lang)
		}
		parts[i] = p
	}
	if len(parts) > max {
		return "", failure.Detail(ErrInvalidLang, "%d languages, at most %d at once", len(parts), max)
	}
	for _, p := range parts {
		if l.usable[p] != nil {
			continue
		}
		if i := slices.IndexFunc(l.unusable, func(m Model) bool { return m.Name == p }); i >= 0 {
			return "", failure.Detail(ErrUnknownLanguage, "%s is installed but cannot be used: %s; installed: %s",
				p, l.unusable[i].Problem, l.listed())
		}
		if p == osdName {
			return "", failure.Detail(ErrUnknownLanguage, "osd is the orientation model (config --psm 0 or 1 uses it), not a language; installed: %s", l.listed())
		}
		unknown = append(unknown, p)
	}
	if len(unknown) > 0 {
		return "", failure.Detail(ErrUnknownLanguage, "%s not installed; installed: %s", strings.Join(unknown, ", "), l.listed())
	}
	return strings.Join(parts, "+"), nil
}

// listed names the usable models for an error message (GET /languages has them all).
func (l *Languages) listed() string {
	const most = 40
	names := l.Names()
	if len(names) > most {
		return strings.Join(names[:most], ", ") + fmt.Sprintf(" and %d more (GET /languages)", len(names)-most)
	}
	return strings.Join(names, ", ") + " (GET /languages)"
}

// link makes dir the one model directory Tesseract is given (it takes one): a link to each
// usable model wherever it lies, the orientation model, and the image directory's other files
// (configs). Models found unusable are not linked, so no worker can load them.
func (l *Languages) link(dir string) error {
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	entries, err := os.ReadDir(l.tessdata)
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".traineddata") && e.Name() != "script" {
			errs = append(errs, os.Symlink(filepath.Join(l.tessdata, e.Name()), filepath.Join(dir, e.Name())))
		}
	}
	models := l.Models()
	if l.osd != nil {
		models = append(models, *l.osd)
	}
	for _, m := range models {
		errs = append(errs, os.Symlink(m.path, filepath.Join(dir, m.Name+".traineddata")))
	}
	return errors.Join(errs...)
}
