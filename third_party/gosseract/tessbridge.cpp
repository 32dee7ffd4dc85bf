#if __FreeBSD__ >= 10
#include "/usr/local/include/leptonica/allheaders.h"
#include "/usr/local/include/tesseract/baseapi.h"
#else
#include <leptonica/allheaders.h>
#include <tesseract/baseapi.h>
#include <tesseract/ocrclass.h>
#include <tesseract/renderer.h>
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <string>
#include <unistd.h>
#include "tessbridge.h"

TessBaseAPI Create() {
    tesseract::TessBaseAPI* api = new tesseract::TessBaseAPI();
    return (void*)api;
}

void Free(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    if (api != nullptr) {
        api->End();
        delete api;
    }
}

void Clear(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    if (api != nullptr) {
        api->Clear();
    }
}

void ClearPersistentCache(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    api->ClearPersistentCache();
}

int Init(TessBaseAPI a, char* tessdataprefix, char* languages) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    return api->Init(tessdataprefix, languages);
}

int Init(TessBaseAPI a, char* tessdataprefix, char* languages, char* configfilepath, char* errbuf) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;

    // {{{ Redirect STDERR to given buffer
    fflush(stderr);
    int original_stderr;
    original_stderr = dup(STDERR_FILENO);
    (void)freopen("/dev/null", "a", stderr);
    setbuf(stderr, errbuf);
    // }}}

    int ret;
    if (configfilepath != NULL) {
        char* configs[] = {configfilepath};
        int configs_size = 1;
        ret = api->Init(tessdataprefix, languages, tesseract::OEM_DEFAULT, configs, configs_size, NULL, NULL, false);
    } else {
        ret = api->Init(tessdataprefix, languages);
    }

    // {{{ Restore default stderr
    (void)freopen("/dev/null", "a", stderr);
    dup2(original_stderr, STDERR_FILENO);
    close(original_stderr);
    setbuf(stderr, NULL);
    // }}}

    return ret;
}

bool SetVariable(TessBaseAPI a, char* name, char* value) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    return api->SetVariable(name, value);
}

void SetPixImage(TessBaseAPI a, PixImage pix) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    Pix* image = (Pix*)pix;
    api->SetImage(image);
    if (api->GetSourceYResolution() < 70) {
        api->SetSourceResolution(70);
    }
}

void SetPageSegMode(TessBaseAPI a, int m) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    tesseract::PageSegMode mode = (tesseract::PageSegMode)m;
    api->SetPageSegMode(mode);
}

int GetPageSegMode(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    return api->GetPageSegMode();
}

// readocr: Tesseract asks ETEXT_DESC's cancel callback between words; *cancel is set (atomically)
// by another thread to stop recognition of the page early.
static bool cancelRequested(void* cancel, int words) {
    (void)words;
    return __atomic_load_n((int*)cancel, __ATOMIC_RELAXED) != 0;
}

// readocr: returns 0 when the page was recognised, -1 when it failed or was cancelled.
int RecognizeCancellable(TessBaseAPI a, int* cancel) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    tesseract::ETEXT_DESC monitor;
    monitor.cancel = cancelRequested;
    monitor.cancel_this = cancel;
    return api->Recognize(&monitor);
}

char* UTF8Text(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    return api->GetUTF8Text();
}

// readocr: strings from GetUTF8Text/GetHOCRText are new[]-allocated and owned by the caller.
void FreeText(char* text) {
    delete[] text;
}

// readocr: lets callers read a variable's current value (to restore defaults between uses).
char* GetStringVariable(TessBaseAPI a, char* name) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    std::string value;
    if (!api->GetVariableAsString(name, &value)) {
        return NULL;
    }
    char* out = (char*)malloc(value.size() + 1);
    memcpy(out, value.c_str(), value.size() + 1);
    return out;
}

char* HOCRText(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    return api->GetHOCRText(0);
}

bounding_boxes* GetBoundingBoxesVerbose(TessBaseAPI a, int recognized) {
    using namespace tesseract;
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    struct bounding_boxes* box_array;
    box_array = (bounding_boxes*)malloc(sizeof(bounding_boxes));
    // linearly resize boxes array
    int realloc_threshold = 900;
    int realloc_raise = 1000;
    int capacity = 1000;
    box_array->boxes = (bounding_box*)malloc(capacity * sizeof(bounding_box));
    box_array->length = 0;
    if (!recognized) {  // readocr: RecognizeCancellable already did
        api->Recognize(NULL);
    }
    int block_num = 0;
    int par_num = 0;
    int line_num = 0;
    int word_num = 0;

    ResultIterator* res_it = api->GetIterator();
    while (!res_it->Empty(RIL_BLOCK)) {
        if (res_it->Empty(RIL_WORD)) {
            res_it->Next(RIL_WORD);
            continue;
        }
        // Add rows for any new block/paragraph/textline.
        if (res_it->IsAtBeginningOf(RIL_BLOCK)) {
            block_num++;
            par_num = 0;
            line_num = 0;
            word_num = 0;
        }
        if (res_it->IsAtBeginningOf(RIL_PARA)) {
            par_num++;
            line_num = 0;
            word_num = 0;
        }
        if (res_it->IsAtBeginningOf(RIL_TEXTLINE)) {
            line_num++;
            word_num = 0;
        }
        word_num++;

        if (box_array->length >= realloc_threshold) {
            capacity += realloc_raise;
            box_array->boxes = (bounding_box*)realloc(box_array->boxes, capacity * sizeof(bounding_box));
            realloc_threshold += realloc_raise;
        }

        box_array->boxes[box_array->length].word = res_it->GetUTF8Text(RIL_WORD);
        box_array->boxes[box_array->length].confidence = res_it->Confidence(RIL_WORD);
        res_it->BoundingBox(RIL_WORD, &box_array->boxes[box_array->length].x1, &box_array->boxes[box_array->length].y1,
                            &box_array->boxes[box_array->length].x2, &box_array->boxes[box_array->length].y2);

        // block, para, line, word numbers
        box_array->boxes[box_array->length].block_num = block_num;
        box_array->boxes[box_array->length].par_num = par_num;
        box_array->boxes[box_array->length].line_num = line_num;
        box_array->boxes[box_array->length].word_num = word_num;

        box_array->length++;
        res_it->Next(RIL_WORD);
    }
    delete res_it;  // readocr: the iterator is owned by the caller

    return box_array;
}

bounding_boxes* GetBoundingBoxes(TessBaseAPI a, int pageIteratorLevel, int recognized) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    struct bounding_boxes* box_array;
    box_array = (bounding_boxes*)malloc(sizeof(bounding_boxes));
    // linearly resize boxes array
    int realloc_threshold = 900;
    int realloc_raise = 1000;
    int capacity = 1000;
    box_array->boxes = (bounding_box*)malloc(capacity * sizeof(bounding_box));
    box_array->length = 0;
    if (!recognized) {  // readocr: RecognizeCancellable already did
        api->Recognize(NULL);
    }
    tesseract::ResultIterator* ri = api->GetIterator();
    tesseract::PageIteratorLevel level = (tesseract::PageIteratorLevel)pageIteratorLevel;

    if (ri != 0) {
        do {
            if (box_array->length >= realloc_threshold) {
                capacity += realloc_raise;
                box_array->boxes = (bounding_box*)realloc(box_array->boxes, capacity * sizeof(bounding_box));
                realloc_threshold += realloc_raise;
            }
            box_array->boxes[box_array->length].word = ri->GetUTF8Text(level);
            box_array->boxes[box_array->length].confidence = ri->Confidence(level);
            ri->BoundingBox(level, &box_array->boxes[box_array->length].x1, &box_array->boxes[box_array->length].y1,
                            &box_array->boxes[box_array->length].x2, &box_array->boxes[box_array->length].y2);
            box_array->length++;
        } while (ri->Next(level));
    }
    delete ri;  // readocr: the iterator is owned by the caller

    return box_array;
}

const char* Version(TessBaseAPI a) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    const char* v = api->Version();
    return v;
}

PixImage CreatePixImageByFilePath(char* imagepath) {
    Pix* image = pixRead(imagepath);
    return (void*)image;
}

PixImage CreatePixImageFromBytes(unsigned char* data, int size) {
    Pix* image = pixReadMem(data, (size_t)size);
    return (void*)image;
}

// readocr: returns pix turned upright for an EXIF orientation (2-8), or NULL when Leptonica
// failed; pix itself is left as it is. Rotating here, on the decoded pix, costs one copy of the
// page, where decoding, rotating and re-encoding in Go cost three.
PixImage OrientPixImage(PixImage pix, int orientation) {
    Pix* src = (Pix*)pix;
    Pix* flipped = NULL;
    Pix* out = NULL;
    switch (orientation) {
    case 2: return (void*)pixFlipLR(NULL, src);
    case 3: return (void*)pixRotateOrth(src, 2);
    case 4: return (void*)pixFlipTB(NULL, src);
    case 6: return (void*)pixRotateOrth(src, 1);
    case 8: return (void*)pixRotateOrth(src, 3);
    case 5:  // transpose: mirror, then a quarter turn counter-clockwise
    case 7:  // transverse: mirror, then a quarter turn clockwise
        flipped = pixFlipLR(NULL, src);
        if (flipped == NULL) return NULL;
        out = pixRotateOrth(flipped, orientation == 5 ? 3 : 1);
        pixDestroy(&flipped);
        return (void*)out;
    }
    return (void*)pixClone(src);
}

void DestroyPixImage(PixImage pix) {
    Pix* img = (Pix*)pix;
    pixDestroy(&img);
}

const char* GetDataPath() {
    static tesseract::TessBaseAPI api;
    api.Init(nullptr, nullptr);
    return api.GetDatapath();
}

// readocr: page `offset` (the offset of its IFD; 0 for the first) of a multi-page TIFF. pixReadMem
// reads the first page only, and pixaReadMemMultipageTiff decodes every page at once: this
// decodes one, whose size the caller has checked from its IFD.
PixImage CreatePixImageFromTiffPage(unsigned char* data, size_t size, size_t offset) {
    size_t off = offset;
    return (void*)pixReadMemFromMultipageTiff(data, size, &off);
}

// readocr: a pix from raw pixels (a rendered PDF page): channels 1 (8-bit gray) or 4 (RGBA),
// rows of stride bytes, at dpi (so that Tesseract and its PDF renderer know the page's size).
PixImage CreatePixImageFromRaw(unsigned char* data, int width, int height, int stride, int channels, int dpi) {
    if (width <= 0 || height <= 0 || (channels != 1 && channels != 4)) return NULL;
    Pix* pix = pixCreate(width, height, channels == 1 ? 8 : 32);
    if (pix == NULL) return NULL;
    l_uint32* lines = pixGetData(pix);
    int wpl = pixGetWpl(pix);
    for (int y = 0; y < height; y++) {
        const unsigned char* src = data + (size_t)y * stride;
        l_uint32* line = lines + (size_t)y * wpl;
        if (channels == 1) {
            for (int x = 0; x < width; x++) SET_DATA_BYTE(line, x, src[x]);
        } else {
            for (int x = 0; x < width; x++) {
                composeRGBPixel(src[4 * x], src[4 * x + 1], src[4 * x + 2], &line[x]);
            }
        }
    }
    if (channels == 4) pixSetSpp(pix, 3);
    pixSetResolution(pix, dpi, dpi);
    return (void*)pix;
}

// readocr: an 8-bit gray pix made bilevel (1 bit): dark below threshold. Tesseract then skips
// its own thresholding (Otsu) and keeps an eighth of the memory. NULL when pix is not 8-bit.
PixImage ThresholdPixImage(PixImage p, int threshold) {
    Pix* pix = (Pix*)p;
    if (pix == NULL || pixGetDepth(pix) != 8 || pixGetColormap(pix) != NULL) return NULL;
    return (void*)pixThresholdToBinary(pix, threshold);
}

// readocr: the pix losslessly encoded for a PDF image XObject, by Leptonica: 1 bit as CCITT G4,
// anything else as Flate (a colormap removed first, to gray or RGB). Returns 1 on success;
// out->data is then the caller's (FreePageImage).
int EncodePixImage(PixImage p, struct PageImage* out) {
    Pix* pix = (Pix*)p;
    if (pix == NULL || out == NULL) return 0;
    Pix* src = pixClone(pix);
    if (pixGetColormap(src) != NULL) {
        Pix* t = pixRemoveColormap(src, REMOVE_CMAP_BASED_ON_SRC);
        pixDestroy(&src);
        src = t;
    }
    if (src == NULL) return 0;
    int d = pixGetDepth(src);
    if (d != 1 && d != 8 && d != 32) {  // 2, 4 or 16 bits: to 8-bit gray
        Pix* t = pixConvertTo8(src, 0);
        pixDestroy(&src);
        src = t;
        if (src == NULL) return 0;
    }
    L_COMP_DATA* cid = NULL;
    int type = d == 1 ? L_G4_ENCODE : L_FLATE_ENCODE;
    int bad = pixGenerateCIData(src, type, 0, 0, &cid);
    pixDestroy(&src);
    if (bad || cid == NULL) return 0;
    out->data = cid->datacomp;
    out->size = cid->nbytescomp;
    cid->datacomp = NULL;  // now the caller's
    out->g4 = type == L_G4_ENCODE;
    out->width = cid->w;
    out->height = cid->h;
    out->bps = cid->bps;
    out->spp = cid->spp;
    out->minisblack = cid->minisblack;
    out->predictor = cid->predictor;
    l_CIDataDestroy(&cid);
    return 1;
}

void FreePageImage(struct PageImage* img) {
    if (img != NULL && img->data != NULL) {
        LEPT_FREE(img->data);
        img->data = NULL;
    }
}

// readocr: what Tesseract's hOCR (format 0), ALTO (1) and TSV (2) renderers write for page
// `page` (0-based) of the recognised image; the documents' heads and tails are added by the
// caller. Owned by the caller (FreeText).
char* PageRendering(TessBaseAPI a, int format, int page) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    switch (format) {
    case 0: return api->GetHOCRText(page);
    case 1: return api->GetAltoText(page);
    case 2: return api->GetTSVText(page);
    }
    return NULL;
}

// readocr: writes the recognised image as a one-page searchable PDF, outputbase + ".pdf", with
// Tesseract's PDF renderer; with textonly, the invisible text alone (textonly_pdf), no image.
// The input name is cleared while it runs: the renderer reads the file of that name (to embed
// a JPEG as it is), and the name must never point at a file. Returns 1 on success.
int WritePDFPage(TessBaseAPI a, char* outputbase, char* datadir, int textonly) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    std::string name = api->GetInputName() ? api->GetInputName() : "";
    api->SetInputName(NULL);
    tesseract::TessPDFRenderer renderer(outputbase, datadir, textonly != 0);
    bool ok = renderer.happy() && renderer.BeginDocument("") && renderer.AddImage(api) && renderer.EndDocument();
    api->SetInputName(name.c_str());
    return ok ? 1 : 0;
}

// readocr: the name the renderers print for the image (hOCR's title, ALTO's fileName).
void SetInputName(TessBaseAPI a, char* name) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    api->SetInputName(name);
}

// readocr: the library's version, without an API instance.
const char* TesseractVersion() {
    return tesseract::TessBaseAPI::Version();
}

// readocr: the clockwise quarter turns (0-3) that make pix upright, read with a that holds the
// orientation model (osd), and Tesseract's confidence; 0 when it could not tell.
int DetectOrientation(TessBaseAPI a, PixImage pix, int* quads, float* conf) {
    tesseract::TessBaseAPI* api = (tesseract::TessBaseAPI*)a;
    api->SetPageSegMode(tesseract::PSM_OSD_ONLY);
    api->SetImage((Pix*)pix);
    int deg = 0;
    const char* script = NULL;
    float script_conf = 0;
    bool ok = api->DetectOrientationScript(&deg, conf, &script, &script_conf);
    api->Clear();
    if (!ok) return 0;
    // deg is how far the text is turned counter-clockwise; turning it back is clockwise.
    *quads = ((360 - deg) % 360) / 90;
    return 1;
}

// readocr: another reference to pix (Leptonica counts them).
PixImage ClonePixImage(PixImage pix) {
    return (void*)pixClone((Pix*)pix);
}

// readocr: pix turned by quads clockwise quarter turns (a new pix).
PixImage RotateOrthPixImage(PixImage pix, int quads) {
    return (void*)pixRotateOrth((Pix*)pix, quads);
}

// readocr: the skew of pix's text lines (Leptonica's pixFindSkew on its 1-bit version) in
// degrees, counter-clockwise positive, and its confidence; and pix turned clockwise by it (a
// new pix, the same size, white brought in), or NULL when no skew was found.
PixImage DeskewPixImage(PixImage p, float* angle, float* conf) {
    Pix* pix = (Pix*)p;
    Pix* bin = pixGetDepth(pix) == 1 ? pixClone(pix) : pixConvertTo1(pix, 130);
    if (bin == NULL) return NULL;
    l_float32 a = 0, c = 0;
    // At half and full resolution (pixFindSkew's 4x and 2x reductions lose ~40 % of a 2 degree
    // skew on a 300 DPI page of small text), over +-7 degrees.
    l_int32 failed = pixFindSkewSweepAndSearch(bin, &a, &c, 2, 1, 7.0, 1.0, 0.01);
    pixDestroy(&bin);
    *angle = a;
    *conf = c;
    if (failed) return NULL;
    return (void*)pixRotate(pix, 3.14159265358979 / 180.0 * a, L_ROTATE_AREA_MAP, L_BRING_IN_WHITE, 0, 0);
}

// readocr: pix in 8-bit gray (colour by its luminance), a new pix.
PixImage GrayPixImage(PixImage pix) {
    return (void*)pixConvertTo8((Pix*)pix, 0);
}

// readocr: the resolution Tesseract takes pix to have.
void SetPixResolution(PixImage pix, int dpi) {
    pixSetResolution((Pix*)pix, dpi, dpi);
}
