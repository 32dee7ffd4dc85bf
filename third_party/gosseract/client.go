package gosseract

// #include <stdio.h>
// #include <stdlib.h>
// #include <stdbool.h>
// #include "tessbridge.h"
import "C"
import (
	"context"
	"errors"
	"fmt"
	"image"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// readocr: Init swaps the process-wide stderr (freopen + dup2); two Inits at once can leave
// fd 2 pointing at /dev/null for good. One Init at a time keeps stderr intact.
var initMu sync.Mutex

// Version returns the version of Tesseract-OCR
func Version() string {
	api := C.Create()
	defer C.Free(api)
	version := C.Version(api)
	return C.GoString(version)
}

// ClearPersistentCache clears any library-level memory caches. There are a variety of expensive-to-load constant data structures (mostly language dictionaries) that are cached globally – surviving the Init() and End() of individual TessBaseAPI's. This function allows the clearing of these caches.
func ClearPersistentCache() {
	api := C.Create()
	defer C.Free(api)
	C.ClearPersistentCache(api)
}

// Client is argument builder for tesseract::TessBaseAPI.
type Client struct {
	api C.TessBaseAPI

	// Holds a reference to the pix image to be able to destroy on client close
	// or when a new image is set
	pixImage C.PixImage

	// Trim specifies characters to trim, which would be trimed from result string.
	// As results of OCR, text often contains unnecessary characters, such as newlines, on the head/foot of string.
	// If `Trim` is set, this client will remove specified characters from the result.
	Trim bool

	// TessdataPrefix can indicate directory path to `tessdata`.
	// It is set `/usr/local/share/tessdata/` or something like that, as default.
	// TODO: Implement and test
	TessdataPrefix string

	// Languages are languages to be detected. If not specified, it's gonna be "eng".
	Languages []string

	// Variables is just a pool to evaluate "tesseract::TessBaseAPI->SetVariable" in delay.
	// TODO: Think if it should be public, or private property.
	Variables map[SettableVariable]string

	// Config is a file path to the configuration for Tesseract
	// See http://www.sk-spell.sk.cx/tesseract-ocr-parameters-in-302-version
	// TODO: Fix link to official page
	ConfigFilePath string

	// internal flag to check if the instance should be initialized again
	// i.e, we should create a new gosseract client when language or config file change
	shouldInit bool

	// readocr: pixApplied is true once the current pixImage was handed to Tesseract, so that
	// GetBoundingBoxesVerbose followed by Text() recognises the page once, not twice.
	pixApplied bool

	// readocr: recognized is true once RecognizeContext recognised the current image, so that
	// the bounding-box calls read its results instead of recognising the page again.
	recognized bool
}

// NewClient construct new Client. It's due to caller to Close this client.
func NewClient() *Client {
	client := &Client{
		api:        C.Create(),
		Variables:  map[SettableVariable]string{},
		Trim:       true,
		shouldInit: true,
		Languages:  []string{"eng"},
	}
	return client
}

// Close frees allocated API. This MUST be called for ANY client constructed by "NewClient" function.
func (client *Client) Close() (err error) {
	// defer func() {
	// 	if e := recover(); e != nil {
	// 		err = fmt.Errorf("%v", e)
	// 	}
	// }()
	C.Clear(client.api)
	C.Free(client.api)
	if client.pixImage != nil {
		C.DestroyPixImage(client.pixImage)
		client.pixImage = nil
	}
	return err
}

// Version provides the version of Tesseract used by this client.
func (client *Client) Version() string {
	version := C.Version(client.api)
	return C.GoString(version)
}

// SetImage sets path to image file to be processed OCR.
func (client *Client) SetImage(imagepath string) error {

	if client.api == nil {
		return fmt.Errorf("TessBaseAPI is not constructed, please use `gosseract.NewClient`")
	}
	if imagepath == "" {
		return fmt.Errorf("image path cannot be empty")
	}
	if _, err := os.Stat(imagepath); err != nil {
		return fmt.Errorf("cannot detect the stat of specified file: %v", err)
	}

	if client.pixImage != nil {
		C.DestroyPixImage(client.pixImage)
		client.pixImage = nil
	}

	p := C.CString(imagepath)
	defer C.free(unsafe.Pointer(p))

	img := C.CreatePixImageByFilePath(p)
	client.pixImage = img
	client.pixApplied = false
	client.recognized = false
	if img == nil {
		return fmt.Errorf("leptonica could not read the image file")
	}

	return nil
}

// SetImageFromBytes sets the image data to be processed OCR.
func (client *Client) SetImageFromBytes(data []byte) error {

	if client.api == nil {
		return fmt.Errorf("TessBaseAPI is not constructed, please use `gosseract.NewClient`")
	}
	if len(data) == 0 {
		return fmt.Errorf("image data cannot be empty")
	}

	if client.pixImage != nil {
		C.DestroyPixImage(client.pixImage)
		client.pixImage = nil
	}

	img := C.CreatePixImageFromBytes((*C.uchar)(unsafe.Pointer(&data[0])), C.int(len(data)))
	client.pixImage = img
	client.pixApplied = false
	client.recognized = false
	if img == nil {
		// readocr: Leptonica could not decode the bytes; without this, Text() ran on no image.
		return fmt.Errorf("leptonica could not decode the image data")
	}

	return nil
}

// setPix replaces the current image with img (nil: Leptonica could not make it).
func (client *Client) setPix(img C.PixImage) {
	if client.pixImage != nil {
		C.DestroyPixImage(client.pixImage)
	}
	client.pixImage = img
	client.pixApplied = false
	client.recognized = false
}

// SetImageFromTIFFPage sets one page of a multi-page TIFF: the page whose IFD is at offset (0
// for the first page). Only that page is decoded.
// readocr: added; SetImageFromBytes (pixReadMem) reads the first page of a TIFF only.
func (client *Client) SetImageFromTIFFPage(data []byte, offset uint64) error {
	if client.api == nil {
		return fmt.Errorf("TessBaseAPI is not constructed, please use `gosseract.NewClient`")
	}
	if len(data) == 0 {
		return fmt.Errorf("image data cannot be empty")
	}
	client.setPix(C.CreatePixImageFromTiffPage((*C.uchar)(unsafe.Pointer(&data[0])), C.size_t(len(data)), C.size_t(offset)))
	if client.pixImage == nil {
		return fmt.Errorf("leptonica could not decode the TIFF page at offset %d", offset)
	}
	return nil
}

// SetImageFromPixels sets an image from raw pixels: 8-bit gray (channels 1) or RGBA (4), rows
// of stride bytes, at dpi dots per inch.
// readocr: added, for pages rendered from PDF.
func (client *Client) SetImageFromPixels(pix []byte, width, height, stride, channels, dpi int) error {
	if client.api == nil {
		return fmt.Errorf("TessBaseAPI is not constructed, please use `gosseract.NewClient`")
	}
	if width <= 0 || height <= 0 || stride < width*channels || len(pix) < (height-1)*stride+width*channels {
		return fmt.Errorf("pixels do not match %dx%d with %d channels and stride %d", width, height, channels, stride)
	}
	client.setPix(C.CreatePixImageFromRaw((*C.uchar)(unsafe.Pointer(&pix[0])), C.int(width), C.int(height),
		C.int(stride), C.int(channels), C.int(dpi)))
	if client.pixImage == nil {
		return fmt.Errorf("leptonica could not make a %dx%d image", width, height)
	}
	return nil
}

// TesseractVersion is the version of the linked Tesseract library, e.g. "5.3.0".
// readocr: added; the renderers print it in their documents' heads.
func TesseractVersion() string { return C.GoString(C.TesseractVersion()) }

// Renderings of a recognised page, as Tesseract's renderers write them (PageRendering).
const (
	RenderHOCR = 0
	RenderALTO = 1
	RenderTSV  = 2
)

// PageRendering returns what Tesseract's hOCR, ALTO or TSV renderer writes for the recognised
// image as page `page` (0-based) of a document: the page only, without the document's head and
// tail. Call it after RecognizeContext.
// readocr: added; upstream offers hOCR of page 0 only.
func (client *Client) PageRendering(format, page int) (string, error) {
	if err := client.init(); err != nil {
		return "", err
	}
	text := C.PageRendering(client.api, C.int(format), C.int(page))
	if text == nil {
		return "", fmt.Errorf("tesseract rendered nothing (format %d)", format)
	}
	defer C.FreeText(text)
	return C.GoString(text), nil
}

// WritePDFPage writes the recognised image as a one-page searchable PDF to outputbase + ".pdf",
// with Tesseract's PDF renderer (fonts from datadir when it has pdf.ttf, else built in); with
// textOnly, the page's invisible text alone, without the image (Tesseract's textonly_pdf), to
// be laid over the original page. Call it after RecognizeContext.
// readocr: added.
func (client *Client) WritePDFPage(outputbase, datadir string, textOnly bool) error {
	if err := client.init(); err != nil {
		return err
	}
	base, dir := C.CString(outputbase), C.CString(datadir)
	defer C.free(unsafe.Pointer(base))
	defer C.free(unsafe.Pointer(dir))
	only := C.int(0)
	if textOnly {
		only = 1
	}
	if C.WritePDFPage(client.api, base, dir, only) != 1 {
		return fmt.Errorf("tesseract could not write the PDF page")
	}
	return nil
}

// SetInputName sets the image name the renderers print (hOCR's title, ALTO's fileName).
// readocr: added; the tesseract CLI prints "-" for an image read from standard input.
func (client *Client) SetInputName(name string) {
	n := C.CString(name)
	defer C.free(unsafe.Pointer(n))
	C.SetInputName(client.api, n)
}

// ThresholdImage makes the current 8-bit gray image bilevel: pixels darker than threshold
// black, the others white. For pages that are black and white to begin with (fax and office
// scans), so that Tesseract skips its own thresholding and holds 1 bit a pixel.
// readocr: added.
func (client *Client) ThresholdImage(threshold int) error {
	if client.pixImage == nil {
		return fmt.Errorf("no image is set")
	}
	bilevel := C.ThresholdPixImage(client.pixImage, C.int(threshold))
	if bilevel == nil {
		return fmt.Errorf("only an 8-bit gray image can be thresholded")
	}
	client.setPix(bilevel)
	return nil
}

// PageImage is the current image encoded for a PDF, losslessly: Data is a CCITT G4 stream
// (G4, 1 bit) or a Flate (zlib) stream of rows of Width x SamplesPerPixel samples of
// BitsPerComponent bits.
// readocr: added, so that a searchable PDF of an image keeps its pixels as they came.
type PageImage struct {
	Data                              []byte
	G4                                bool
	Width, Height                     int
	BitsPerComponent, SamplesPerPixel int
	BlackIs1                          bool // G4: the encoding's photometry (a PDF's /BlackIs1)
	PNGPredictors                     bool // Flate: rows carry PNG predictors (a PDF's /Predictor 15)
}

// EncodeImage encodes the current image (after OrientImage) as a PageImage, with Leptonica.
// readocr: added.
func (client *Client) EncodeImage() (PageImage, error) {
	if client.pixImage == nil {
		return PageImage{}, fmt.Errorf("no image is set")
	}
	var out C.struct_PageImage
	if C.EncodePixImage(client.pixImage, &out) != 1 {
		return PageImage{}, fmt.Errorf("leptonica could not encode the image")
	}
	defer C.FreePageImage(&out)
	return PageImage{Data: C.GoBytes(unsafe.Pointer(out.data), C.int(out.size)), G4: out.g4 != 0,
		Width: int(out.width), Height: int(out.height), BitsPerComponent: int(out.bps), SamplesPerPixel: int(out.spp),
		BlackIs1: out.minisblack != 0, PNGPredictors: out.predictor != 0}, nil
}

// OrientImage turns the current image upright for an EXIF orientation (1-8; 1 is upright): JPEG
// photos are stored as the camera was held, and Leptonica ignores EXIF.
// readocr: added; rotating the decoded pix avoids decoding and re-encoding the page in Go.
func (client *Client) OrientImage(orientation int) error {
	if client.pixImage == nil {
		return fmt.Errorf("no image is set")
	}
	if orientation <= 1 || orientation > 8 {
		return nil
	}
	turned := C.OrientPixImage(client.pixImage, C.int(orientation))
	if turned == nil {
		return fmt.Errorf("leptonica could not turn the image (orientation %d)", orientation)
	}
	C.DestroyPixImage(client.pixImage)
	client.pixImage = turned
	client.pixApplied = false
	client.recognized = false
	return nil
}

// DetectOrientation reads how page's current image must be turned to be upright: clockwise
// quarter turns (0-3) and Tesseract's confidence. The client must hold the orientation model
// (SetLanguage("osd")); page's image is not changed.
// readocr: added, for searchable PDFs whose pages are turned by /Rotate (rotate_pages).
func (client *Client) DetectOrientation(page *Client) (quads int, confidence float64, err error) {
	if page.pixImage == nil {
		return 0, 0, fmt.Errorf("no image is set")
	}
	if client.pixImage != nil {
		C.DestroyPixImage(client.pixImage)
	}
	client.pixImage = C.ClonePixImage(page.pixImage) // the same pixels, not a copy
	client.pixApplied = false
	defer client.ClearImage()
	if err := client.init(); err != nil {
		return 0, 0, err
	}
	var q C.int
	var conf C.float
	if C.DetectOrientation(client.api, client.pixImage, &q, &conf) != 1 {
		return 0, 0, fmt.Errorf("tesseract could not detect the orientation")
	}
	return int(q), float64(conf), nil
}

// RotateImage turns the current image by quads clockwise quarter turns.
// readocr: added (rotate_pages).
func (client *Client) RotateImage(quads int) error {
	if client.pixImage == nil {
		return fmt.Errorf("no image is set")
	}
	if quads%4 == 0 {
		return nil
	}
	turned := C.RotateOrthPixImage(client.pixImage, C.int((quads%4+4)%4))
	if turned == nil {
		return fmt.Errorf("leptonica could not turn the image")
	}
	client.replacePix(turned)
	return nil
}

// DeskewImage finds the skew of the current image's text lines (Leptonica's pixFindSkew) and,
// when it is found with at least minConfidence and is at least minDegrees, turns the image
// clockwise by it. It returns the angle turned (degrees, clockwise positive; 0: not turned).
// readocr: added (deskew).
func (client *Client) DeskewImage(minDegrees, minConfidence float64) (float64, error) {
	if client.pixImage == nil {
		return 0, fmt.Errorf("no image is set")
	}
	var angle, conf C.float
	turned := C.DeskewPixImage(client.pixImage, &angle, &conf)
	if turned == nil {
		return 0, nil
	}
	if float64(conf) < minConfidence || math.Abs(float64(angle)) < minDegrees {
		C.DestroyPixImage(turned)
		return 0, nil
	}
	client.replacePix(turned)
	return float64(angle), nil
}

// GrayImage makes the current image 8-bit gray (a colour image by its luminance).
// readocr: added, so that a colour scan's JPEG read from a PDF is read in gray, as a PDF page's
// rendering is (Tesseract's colour thresholding takes a highlighter, dark in blue, for ink).
func (client *Client) GrayImage() error {
	if client.pixImage == nil {
		return fmt.Errorf("no image is set")
	}
	gray := C.GrayPixImage(client.pixImage)
	if gray == nil {
		return fmt.Errorf("leptonica could not make the image gray")
	}
	client.replacePix(gray)
	return nil
}

// SetResolution sets the resolution Tesseract takes the current image to have, in DPI.
// readocr: added: a JPEG from a PDF often says 72 DPI or nothing; the page's says what it is.
func (client *Client) SetResolution(dpi int) error {
	if client.pixImage == nil {
		return fmt.Errorf("no image is set")
	}
	C.SetPixResolution(client.pixImage, C.int(dpi))
	client.pixApplied = false
	return nil
}

// replacePix makes pix (new, owned) the current image.
func (client *Client) replacePix(pix C.PixImage) {
	C.DestroyPixImage(client.pixImage)
	client.pixImage = pix
	client.pixApplied = false
	client.recognized = false
}

// SetLanguage sets languages to use. English as default.
func (client *Client) SetLanguage(langs ...string) error {
	if len(langs) == 0 {
		return fmt.Errorf("languages cannot be empty")
	}

	client.Languages = langs

	client.flagForInit()

	return nil
}

// DisableOutput ...
func (client *Client) DisableOutput() error {
	err := client.SetVariable(DEBUG_FILE, os.DevNull)

	client.setVariablesToInitializedAPIIfNeeded()

	return err
}

// SetWhitelist sets whitelist chars.
// See official documentation for whitelist here https://tesseract-ocr.github.io/tessdoc/ImproveQuality#dictionaries-word-lists-and-patterns
func (client *Client) SetWhitelist(whitelist string) error {
	err := client.SetVariable(TESSEDIT_CHAR_WHITELIST, whitelist)

	client.setVariablesToInitializedAPIIfNeeded()

	return err
}

// SetBlacklist sets blacklist chars.
// See official documentation for blacklist here https://tesseract-ocr.github.io/tessdoc/ImproveQuality#dictionaries-word-lists-and-patterns
func (client *Client) SetBlacklist(blacklist string) error {
	err := client.SetVariable(TESSEDIT_CHAR_BLACKLIST, blacklist)

	client.setVariablesToInitializedAPIIfNeeded()

	return err
}

// SetVariable sets parameters, representing tesseract::TessBaseAPI->SetVariable.
// See official documentation here https://zdenop.github.io/tesseract-doc/classtesseract_1_1_tess_base_a_p_i.html#a2e09259c558c6d8e0f7e523cbaf5adf5
// Because `api->SetVariable` must be called after `api->Init`, this method cannot detect unexpected key for variables.
// Check `client.setVariablesToInitializedAPI` for more information.
func (client *Client) SetVariable(key SettableVariable, value string) error {
	client.Variables[key] = value

	// readocr: report a variable Tesseract refused instead of dropping the error.
	return client.setVariablesToInitializedAPIIfNeeded()
}

// GetVariable returns the current value of a Tesseract variable of an initialised client.
// readocr: added so that callers can restore defaults after a per-request override.
func (client *Client) GetVariable(key SettableVariable) (string, bool) {
	k := C.CString(string(key))
	defer C.free(unsafe.Pointer(k))
	v := C.GetStringVariable(client.api, k)
	if v == nil {
		return "", false
	}
	defer C.free(unsafe.Pointer(v))
	return C.GoString(v), true
}

// ClearImage frees the current image and recognition results, keeping the loaded models.
// readocr: added so that an idle client does not pin the last (possibly large) page in memory.
func (client *Client) ClearImage() {
	C.Clear(client.api)
	if client.pixImage != nil {
		C.DestroyPixImage(client.pixImage)
		client.pixImage = nil
	}
	client.pixApplied = false
	client.recognized = false
}

// Initialized reports whether Tesseract has been initialised (models loaded) for this client.
func (client *Client) Initialized() bool {
	return !client.shouldInit
}

// SetPageSegMode sets "Page Segmentation Mode" (PSM) to detect layout of characters.
// See official documentation for PSM here https://tesseract-ocr.github.io/tessdoc/ImproveQuality#page-segmentation-method
// See https://github.com/otiai10/gosseract/issues/52 for more information.
func (client *Client) SetPageSegMode(mode PageSegMode) error {
	C.SetPageSegMode(client.api, C.int(mode))
	return nil
}

// SetConfigFile sets the file path to config file.
func (client *Client) SetConfigFile(fpath string) error {
	info, err := os.Stat(fpath)
	if err != nil {
		return err
	}
	if info.IsDir() {
		return fmt.Errorf("the specified config file path seems to be a directory")
	}
	client.ConfigFilePath = fpath

	client.flagForInit()

	return nil
}

// SetTessdataPrefix sets path to the models directory.
// Environment variable TESSDATA_PREFIX is used as default.
func (client *Client) SetTessdataPrefix(prefix string) error {
	if prefix == "" {
		return fmt.Errorf("tessdata prefix could not be empty")
	}
	client.TessdataPrefix = prefix
	client.flagForInit()
	return nil
}

// Initialize tesseract::TessBaseAPI
func (client *Client) init() error {

	if !client.shouldInit {
		if client.pixImage == nil {
			return fmt.Errorf("PixImage is not set, use SetImage or SetImageFromBytes before Text or HOCRText")
		}
		if !client.pixApplied {
			C.SetPixImage(client.api, client.pixImage)
			client.pixApplied = true
			client.recognized = false
		}
		return nil
	}

	var languages *C.char
	if len(client.Languages) != 0 {
		languages = C.CString(strings.Join(client.Languages, "+"))
	}
	defer C.free(unsafe.Pointer(languages))

	var configfile *C.char
	if _, err := os.Stat(client.ConfigFilePath); err == nil {
		configfile = C.CString(client.ConfigFilePath)
	}
	defer C.free(unsafe.Pointer(configfile))

	var tessdataPrefix *C.char
	if client.TessdataPrefix != "" {
		tessdataPrefix = C.CString(client.TessdataPrefix)
	}
	defer C.free(unsafe.Pointer(tessdataPrefix))

	// readocr: Init hands errbuf to setbuf(), which assumes BUFSIZ bytes: a 512-byte buffer
	// overflowed on long error output (e.g. a list of unknown languages).
	errbuf := [C.BUFSIZ + 1]C.char{}
	initMu.Lock()
	res := C.Init(client.api, tessdataPrefix, languages, configfile, &errbuf[0])
	initMu.Unlock()
	msg := C.GoString(&errbuf[0])

	if res != 0 {
		return fmt.Errorf("failed to initialize TessBaseAPI with code %d: %s", res, msg)
	}

	if err := client.setVariablesToInitializedAPI(); err != nil {
		return err
	}

	if client.pixImage == nil {
		return fmt.Errorf("PixImage is not set, use SetImage or SetImageFromBytes before Text or HOCRText")
	}

	C.SetPixImage(client.api, client.pixImage)
	client.pixApplied = true
	client.recognized = false

	client.shouldInit = false

	return nil
}

// This method flag the current instance to be initialized again on the next call to a function that
// requires a gosseract API initialized: when user change the config file or the languages
// the instance needs to init a new gosseract api
func (client *Client) flagForInit() {
	client.shouldInit = true
}

// This method sets all the sspecified variables to TessBaseAPI structure.
// Because `api->SetVariable` must be called after `api->Init()`,
// gosseract.Client.SetVariable cannot call `api->SetVariable` directly.
// See https://zdenop.github.io/tesseract-doc/classtesseract_1_1_tess_base_a_p_i.html#a2e09259c558c6d8e0f7e523cbaf5adf5
func (client *Client) setVariablesToInitializedAPI() error {
	for key, value := range client.Variables {
		k, v := C.CString(string(key)), C.CString(value)
		defer C.free(unsafe.Pointer(k))
		defer C.free(unsafe.Pointer(v))
		res := C.SetVariable(client.api, k, v)
		if !bool(res) {
			return fmt.Errorf("failed to set variable with key(%v) and value(%v)", key, value)
		}
	}
	return nil
}

// Call setVariablesToInitializedAPI only if the API is initialized
// it is useful to call when changing variables that does not requires
// to init a new tesseract instance. Otherwise it is better to just flag
// the instance for re-init (Client.flagForInit())
func (client *Client) setVariablesToInitializedAPIIfNeeded() error {
	if !client.shouldInit {
		return client.setVariablesToInitializedAPI()
	}

	return nil
}

// ErrRecognitionFailed is returned by RecognizeContext when Tesseract could not recognise the
// page for a reason other than the context (e.g. no layout could be found).
var ErrRecognitionFailed = errors.New("gosseract: recognition failed")

// RecognizeContext recognises the current image, stopping early when ctx is done: Tesseract
// checks for cancellation between words, so a cancelled page stops within milliseconds and
// RecognizeContext returns ctx.Err(). After it succeeds, Text and the bounding-box calls read
// its results without recognising the page again. After it fails, set a new image.
// readocr: upstream cannot interrupt a page; this passes a cancel callback via ETEXT_DESC.
func (client *Client) RecognizeContext(ctx context.Context) error {
	if err := client.init(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	// The flag lives in C memory: Tesseract reads it from C while Go may set it.
	cancel := (*C.int)(C.calloc(1, C.size_t(unsafe.Sizeof(C.int(0)))))
	defer C.free(unsafe.Pointer(cancel))
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		atomic.StoreInt32((*int32)(unsafe.Pointer(cancel)), 1)
	})
	rc := C.RecognizeCancellable(client.api, cancel)
	if !stop() {
		<-fired // the callback ran or is running: let it finish before the flag is freed
	}
	// A cancelled page is reported by the flag, whatever Recognize returned (its words are fakes).
	if rc != 0 || atomic.LoadInt32((*int32)(unsafe.Pointer(cancel))) != 0 {
		client.recognized = false
		if err := ctx.Err(); err != nil {
			return err
		}
		return ErrRecognitionFailed
	}
	client.recognized = true
	return nil
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// Text finally initialize tesseract::TessBaseAPI, execute OCR and extract text detected as string.
func (client *Client) Text() (out string, err error) {
	if err = client.init(); err != nil {
		return
	}
	text := C.UTF8Text(client.api)
	defer C.FreeText(text) // readocr: upstream never freed this (RSS grew with every call)
	out = C.GoString(text)
	if client.Trim {
		out = strings.Trim(out, "\n")
	}
	return out, err
}

// HOCRText finally initialize tesseract::TessBaseAPI, execute OCR and returns hOCR text.
// See https://en.wikipedia.org/wiki/HOCR for more information of hOCR.
func (client *Client) HOCRText() (out string, err error) {
	if err = client.init(); err != nil {
		return
	}
	text := C.HOCRText(client.api)
	defer C.FreeText(text) // readocr: upstream never freed this
	out = C.GoString(text)
	return
}

// BoundingBox contains the position, confidence and UTF8 text of the recognized word
type BoundingBox struct {
	Box                                image.Rectangle
	Word                               string
	Confidence                         float64
	BlockNum, ParNum, LineNum, WordNum int
}

// GetBoundingBoxes returns bounding boxes for each matched word
func (client *Client) GetBoundingBoxes(level PageIteratorLevel) (out []BoundingBox, err error) {
	if client.api == nil {
		return out, fmt.Errorf("TessBaseAPI is not constructed, please use `gosseract.NewClient`")
	}
	if err = client.init(); err != nil {
		return
	}
	boxArray := C.GetBoundingBoxes(client.api, C.int(level), cBool(client.recognized))
	length := int(boxArray.length)
	defer C.free(unsafe.Pointer(boxArray.boxes))
	defer C.free(unsafe.Pointer(boxArray))
	out = make([]BoundingBox, 0, length)
	for i := 0; i < length; i++ {
		// cast to bounding_box: boxes + i*sizeof(box)
		box := (*C.struct_bounding_box)(unsafe.Pointer(uintptr(unsafe.Pointer(boxArray.boxes)) + uintptr(i)*unsafe.Sizeof(C.struct_bounding_box{})))
		out = append(out, BoundingBox{
			Box:        image.Rect(int(box.x1), int(box.y1), int(box.x2), int(box.y2)),
			Word:       C.GoString(box.word),
			Confidence: float64(box.confidence),
		})
		C.FreeText(box.word) // readocr: upstream never freed the words
	}

	return
}

// GetAvailableLanguages returns a list of available languages in the default tesspath
func GetAvailableLanguages() ([]string, error) {
	languages, err := filepath.Glob(filepath.Join(getDataPath(), "*.traineddata"))
	if err != nil {
		return languages, err
	}
	for i := 0; i < len(languages); i++ {
		languages[i] = filepath.Base(languages[i])
		idx := strings.Index(languages[i], ".")
		languages[i] = languages[i][:idx]
	}
	return languages, nil
}

// GetBoundingBoxesVerbose returns bounding boxes at word level with block_num, par_num, line_num and word_num
// according to the c++ api that returns a formatted TSV output. Reference: `TessBaseAPI::GetTSVText`.
func (client *Client) GetBoundingBoxesVerbose() (out []BoundingBox, err error) {
	if client.api == nil {
		return out, fmt.Errorf("TessBaseAPI is not constructed, please use `gosseract.NewClient`")
	}
	if err = client.init(); err != nil {
		return
	}
	boxArray := C.GetBoundingBoxesVerbose(client.api, cBool(client.recognized))
	length := int(boxArray.length)
	defer C.free(unsafe.Pointer(boxArray.boxes))
	defer C.free(unsafe.Pointer(boxArray))
	out = make([]BoundingBox, 0, length)
	for i := 0; i < length; i++ {
		// cast to bounding_box: boxes + i*sizeof(box)
		box := (*C.struct_bounding_box)(unsafe.Pointer(uintptr(unsafe.Pointer(boxArray.boxes)) + uintptr(i)*unsafe.Sizeof(C.struct_bounding_box{})))
		out = append(out, BoundingBox{
			Box:        image.Rect(int(box.x1), int(box.y1), int(box.x2), int(box.y2)),
			Word:       C.GoString(box.word),
			Confidence: float64(box.confidence),
			BlockNum:   int(box.block_num),
			ParNum:     int(box.par_num),
			LineNum:    int(box.line_num),
			WordNum:    int(box.word_num),
		})
		C.FreeText(box.word) // readocr: upstream never freed the words
	}
	return
}

// getDataPath is useful hepler to determine where current tesseract
// installation stores trained models
func getDataPath() string {
	return C.GoString(C.GetDataPath())
}
