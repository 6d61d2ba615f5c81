/* PNG (libpng) and JPEG (libjpeg-turbo) reading and PNG writing.
 *
 * Reading mirrors what SAA+ does, i.e. OpenCV's cv2.imread (datasets/dataset.py reads images with
 * cv2.IMREAD_COLOR and masks with cv2.IMREAD_GRAYSCALE): the same libpng transforms as OpenCV's
 * PngDecoder::readData (strip_16, strip_alpha, palette_to_rgb, expand_gray_1_2_4_to_8, gray_to_rgb or
 * rgb_to_gray(0.299, 0.587)) and the same libjpeg output colour spaces as JpegDecoder::readData
 * (JCS_RGB, or JCS_GRAYSCALE = the Y channel for IMREAD_GRAYSCALE), default decompression settings
 * (islow DCT, fancy upsampling), and the EXIF orientation of JPEGs applied as cv2.imread does.
 * We hand out RGB where cv2 hands out BGR.
 *
 * Errors (missing, empty, truncated, corrupt files) come back as one line naming the file; libpng and
 * libjpeg errors are caught with setjmp/longjmp and every allocation is released. */
#include <errno.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>
#include <png.h>

#include "saa/image.h"
#include "saa/tensor.h"

typedef enum { LOAD_RGB, LOAD_GRAY, LOAD_GRAY16 } load_mode;

/* Largest accepted picture (pixels): a corrupt header must not make us allocate gigabytes. */
#define MAX_PIXELS ((size_t)1 << 28)

/* ---------------------------------------------------------------------------------------------
 * PNG
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    jmp_buf jb;
    char msg[256];
} png_failure;

static void png_on_error(png_structp png, png_const_charp msg)
{
    png_failure *f = png_get_error_ptr(png);
    snprintf(f->msg, sizeof f->msg, "%s", msg);
    longjmp(f->jb, 1);
}

static void png_on_warning(png_structp png, png_const_charp msg) { (void)png, (void)msg; }

/* Reads an open PNG stream into *pixels (rows of w*c samples; uint16 samples for LOAD_GRAY16). */
static int png_load(FILE *fp, const char *path, load_mode mode, int *w_out, int *h_out, int *c_out, void **pixels)
{
    png_failure fail;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &fail, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return saa_set_error(SAA_ENOMEM, "%s: out of memory reading PNG", path);
    }
    unsigned char *volatile data = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(fail.jb)) {
        png_destroy_read_struct(&png, &info, NULL);
        free(data);
        free(rows);
        return saa_set_error(SAA_EFORMAT, "%s: corrupt or truncated PNG (%s)", path, fail.msg);
    }
    png_init_io(png, fp);
    png_read_info(png, info);
    png_uint_32 w, h;
    int depth, color_type;
    png_get_IHDR(png, info, &w, &h, &depth, &color_type, NULL, NULL, NULL);

    /* mirrors OpenCV grfmt_png.cpp: PngDecoder::readData (IMREAD_COLOR / IMREAD_GRAYSCALE, and
     * IMREAD_ANYDEPTH | IMREAD_GRAYSCALE for LOAD_GRAY16) */
    if (depth == 16) {
        const uint16_t one = 1;
        if (mode == LOAD_GRAY16) {
            if (*(const uint8_t *)&one == 1) png_set_swap(png); /* PNG is big-endian; we want native */
        } else
            png_set_strip_16(png); /* drops the low byte: v >> 8 */
    }
    png_set_strip_alpha(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (!(color_type & PNG_COLOR_MASK_COLOR) && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (mode == LOAD_RGB) {
        if (!(color_type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    } else {
        png_set_rgb_to_gray(png, 1, 0.299, 0.587);
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);

    int c = mode == LOAD_RGB ? 3 : 1;
    size_t sample = mode == LOAD_GRAY16 ? 2 : 1;
    if (mode == LOAD_GRAY16 && depth < 16) {
        /* 8-bit (or less) gray stays 8-bit in libpng; widen below. */
        sample = 1;
    }
    size_t rowbytes = png_get_rowbytes(png, info);
    if (w == 0 || h == 0 || (size_t)w * h > MAX_PIXELS || rowbytes != (size_t)w * c * sample) {
        snprintf(fail.msg, sizeof fail.msg, "unexpected layout %ux%u, %zu bytes per row", (unsigned)w,
                 (unsigned)h, rowbytes);
        longjmp(fail.jb, 1);
    }
    data = malloc(rowbytes * h);
    rows = malloc(h * sizeof *rows);
    if (!data || !rows) {
        snprintf(fail.msg, sizeof fail.msg, "out of memory");
        longjmp(fail.jb, 1);
    }
    for (png_uint_32 y = 0; y < h; y++) rows[y] = data + y * rowbytes;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    png_destroy_read_struct(&png, &info, NULL);
    free(rows);

    if (mode == LOAD_GRAY16 && sample == 1) {
        uint16_t *wide = malloc((size_t)w * h * sizeof *wide);
        if (!wide) {
            free(data);
            return saa_set_error(SAA_ENOMEM, "%s: out of memory", path);
        }
        for (size_t i = 0; i < (size_t)w * h; i++) wide[i] = data[i];
        free(data);
        data = (unsigned char *)wide;
    }
    *w_out = (int)w, *h_out = (int)h, *c_out = c;
    *pixels = data;
    return SAA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * JPEG
 * ------------------------------------------------------------------------------------------- */

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jpeg_failure;

static void jpeg_on_error(j_common_ptr cinfo)
{
    jpeg_failure *f = (jpeg_failure *)cinfo->err;
    f->mgr.format_message(cinfo, f->msg);
    longjmp(f->jb, 1);
}

/* libjpeg only warns about a file that ends early (and pads the picture with gray); cv2 would
 * accept that silently, Pillow refuses it. A truncated input is an error here. Other warnings
 * (e.g. extraneous bytes before a marker) are ignored, as both libraries do. */
static void jpeg_on_message(j_common_ptr cinfo, int level)
{
    if (level < 0 && cinfo->err->msg_code == JWRN_JPEG_EOF) jpeg_on_error(cinfo);
}

/* EXIF orientation (tag 0x0112 of IFD0 in the APP1 "Exif" segment), 1..8, or 1 if absent/unreadable. */
static int exif_orientation(const unsigned char *d, size_t n)
{
    if (n < 14 || memcmp(d, "Exif\0\0", 6) != 0) return 1;
    d += 6, n -= 6; /* TIFF header */
    int le = d[0] == 'I' && d[1] == 'I';
    if (!le && !(d[0] == 'M' && d[1] == 'M')) return 1;
#define RD16(p) (le ? (unsigned)((p)[0] | (p)[1] << 8) : (unsigned)((p)[0] << 8 | (p)[1]))
#define RD32(p) (le ? ((uint32_t)(p)[0] | (uint32_t)(p)[1] << 8 | (uint32_t)(p)[2] << 16 | (uint32_t)(p)[3] << 24) \
                    : ((uint32_t)(p)[0] << 24 | (uint32_t)(p)[1] << 16 | (uint32_t)(p)[2] << 8 | (uint32_t)(p)[3]))
    uint32_t ifd = RD32(d + 4);
    if (ifd > n - 2) return 1;
    unsigned count = RD16(d + ifd);
    for (unsigned i = 0; i < count; i++) {
        size_t e = ifd + 2 + (size_t)i * 12;
        if (e + 12 > n) break;
        if (RD16(d + e) == 0x0112 && RD16(d + e + 2) == 3) {
            unsigned v = RD16(d + e + 8);
            return v >= 1 && v <= 8 ? (int)v : 1;
        }
    }
    return 1;
#undef RD16
#undef RD32
}

/* mirrors OpenCV loadsave.cpp: ExifTransform (applied by cv2.imread unless IMREAD_IGNORE_ORIENTATION).
 * Returns the re-oriented buffer (w/h swapped for 5..8) or NULL on allocation failure. */
static unsigned char *apply_orientation(unsigned char *src, size_t *w, size_t *h, size_t c, int orientation)
{
    size_t W = *w, H = *h;
    int transpose = orientation >= 5;
    size_t ow = transpose ? H : W, oh = transpose ? W : H;
    /* after the optional transpose: flip x for 2, 3, 6, 7; flip y for 3, 4, 7, 8 */
    int flip_x = orientation == 2 || orientation == 3 || orientation == 6 || orientation == 7;
    int flip_y = orientation == 3 || orientation == 4 || orientation == 7 || orientation == 8;
    unsigned char *dst = malloc(ow * oh * c);
    if (!dst) return NULL;
    for (size_t y = 0; y < oh; y++)
        for (size_t x = 0; x < ow; x++) {
            size_t tx = flip_x ? ow - 1 - x : x, ty = flip_y ? oh - 1 - y : y;
            size_t sx = transpose ? ty : tx, sy = transpose ? tx : ty;
            memcpy(dst + (y * ow + x) * c, src + (sy * W + sx) * c, c);
        }
    *w = ow, *h = oh;
    return dst;
}

static int jpeg_load(FILE *fp, const char *path, load_mode mode, int *w_out, int *h_out, int *c_out,
                     void **pixels)
{
    struct jpeg_decompress_struct cinfo;
    jpeg_failure fail;
    cinfo.err = jpeg_std_error(&fail.mgr);
    fail.mgr.error_exit = jpeg_on_error;
    fail.mgr.emit_message = jpeg_on_message;
    unsigned char *volatile data = NULL;
    if (setjmp(fail.jb)) {
        jpeg_destroy_decompress(&cinfo);
        free(data);
        return saa_set_error(SAA_EFORMAT, "%s: corrupt or truncated JPEG (%s)", path, fail.msg);
    }
    jpeg_create_decompress(&cinfo);
    jpeg_stdio_src(&cinfo, fp);
    jpeg_save_markers(&cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(&cinfo, TRUE);
    int orientation = 1;
    for (jpeg_saved_marker_ptr m = cinfo.marker_list; m; m = m->next)
        if (m->marker == JPEG_APP0 + 1 && (orientation = exif_orientation(m->data, m->data_length)) != 1) break;
    if (cinfo.num_components == 4) {
        jpeg_destroy_decompress(&cinfo);
        return saa_set_error(SAA_EUNSUPPORTED, "%s: CMYK/YCCK JPEG is not supported (convert it to RGB)", path);
    }
    /* mirrors OpenCV grfmt_jpeg.cpp: JpegDecoder::readData (out_color_space only; defaults otherwise) */
    int c = mode == LOAD_RGB ? 3 : 1;
    cinfo.out_color_space = c == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_start_decompress(&cinfo);
    if ((int)cinfo.output_components != c || cinfo.output_width == 0 || cinfo.output_height == 0 ||
        (size_t)cinfo.output_width * cinfo.output_height > MAX_PIXELS) {
        snprintf(fail.msg, sizeof fail.msg, "unexpected output layout");
        longjmp(fail.jb, 1);
    }
    size_t w = cinfo.output_width, h = cinfo.output_height, rowbytes = w * c;
    data = malloc(rowbytes * h);
    if (!data) {
        snprintf(fail.msg, sizeof fail.msg, "out of memory");
        longjmp(fail.jb, 1);
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = data + (size_t)cinfo.output_scanline * rowbytes;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);

    if (orientation != 1) {
        unsigned char *turned = apply_orientation(data, &w, &h, (size_t)c, orientation);
        free(data);
        if (!turned) return saa_set_error(SAA_ENOMEM, "%s: out of memory", path);
        data = turned;
    }

    if (mode == LOAD_GRAY16) {
        uint16_t *wide = malloc(w * h * sizeof *wide);
        if (!wide) {
            free(data);
            return saa_set_error(SAA_ENOMEM, "%s: out of memory", path);
        }
        for (size_t i = 0; i < w * h; i++) wide[i] = data[i];
        free(data);
        data = (unsigned char *)wide;
    }
    *w_out = (int)w, *h_out = (int)h, *c_out = c;
    *pixels = data;
    return SAA_OK;
}

/* ---------------------------------------------------------------------------------------------
 * dispatch
 * ------------------------------------------------------------------------------------------- */

static int load_any(const char *path, load_mode mode, int *w, int *h, int *c, void **pixels)
{
    *pixels = NULL;
    FILE *fp = fopen(path, "rb");
    if (!fp) return saa_set_error(SAA_EIO, "%s: cannot open image (%s)", path, strerror(errno));
    unsigned char sig[8];
    size_t n = fread(sig, 1, sizeof sig, fp);
    rewind(fp);
    int rc;
    if (n == 0)
        rc = saa_set_error(SAA_EFORMAT, "%s: empty file, expected a PNG or JPEG image", path);
    else if (n == 8 && png_sig_cmp(sig, 0, 8) == 0)
        rc = png_load(fp, path, mode, w, h, c, pixels);
    else if (n >= 3 && sig[0] == 0xFF && sig[1] == 0xD8 && sig[2] == 0xFF)
        rc = jpeg_load(fp, path, mode, w, h, c, pixels);
    else
        rc = saa_set_error(SAA_EFORMAT, "%s: not a PNG or JPEG image (unrecognised signature)", path);
    fclose(fp);
    return rc;
}

int saa_image_load(const char *path, saa_image *out)
{
    memset(out, 0, sizeof *out);
    void *px;
    int rc = load_any(path, LOAD_RGB, &out->w, &out->h, &out->c, &px);
    if (rc == SAA_OK) out->data = px;
    return rc;
}

int saa_image_load_gray(const char *path, saa_image *out)
{
    memset(out, 0, sizeof *out);
    void *px;
    int rc = load_any(path, LOAD_GRAY, &out->w, &out->h, &out->c, &px);
    if (rc == SAA_OK) out->data = px;
    return rc;
}

int saa_image_load_gray16(const char *path, int *w, int *h, uint16_t **values)
{
    int c;
    void *px;
    *values = NULL;
    int rc = load_any(path, LOAD_GRAY16, w, h, &c, &px);
    if (rc == SAA_OK) *values = px;
    return rc;
}

void saa_image_free(saa_image *img)
{
    if (!img) return;
    free(img->data);
    img->data = NULL;
    img->w = img->h = img->c = 0;
}

void saa_image_swap_rb(saa_image *img)
{
    if (img->c < 3) return;
    size_t n = (size_t)img->w * img->h;
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = img->data + i * img->c, t = p[0];
        p[0] = p[2];
        p[2] = t;
    }
}

/* ---------------------------------------------------------------------------------------------
 * PNG writing
 * ------------------------------------------------------------------------------------------- */

/* Writes rows of w*c samples of `bytes_per_sample` (1, or 2 = native uint16 written big-endian). */
static int png_write(const char *path, const void *pixels, int w, int h, int c, int bytes_per_sample)
{
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, PNG_COLOR_TYPE_GRAY_ALPHA, PNG_COLOR_TYPE_RGB,
                                       PNG_COLOR_TYPE_RGB_ALPHA};
    if (w <= 0 || h <= 0 || c < 1 || c > 4 || c == 2)
        return saa_set_error(SAA_EINVAL, "%s: cannot write a %dx%dx%d image as PNG", path, h, w, c);
    FILE *fp = fopen(path, "wb");
    if (!fp) return saa_set_error(SAA_EIO, "%s: cannot create file (%s)", path, strerror(errno));
    png_failure fail;
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &fail, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    size_t rowbytes = (size_t)w * c * bytes_per_sample;
    unsigned char *volatile row = malloc(rowbytes);
    if (!info || !row) {
        png_destroy_write_struct(&png, NULL);
        free(row);
        fclose(fp);
        return saa_set_error(SAA_ENOMEM, "%s: out of memory writing PNG", path);
    }
    if (setjmp(fail.jb)) {
        png_destroy_write_struct(&png, &info);
        free(row);
        fclose(fp);
        return saa_set_error(SAA_EIO, "%s: cannot write PNG (%s)", path, fail.msg);
    }
    png_init_io(png, fp);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8 * bytes_per_sample, color_types[c],
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) {
        if (bytes_per_sample == 1) {
            memcpy(row, (const uint8_t *)pixels + (size_t)y * rowbytes, rowbytes);
        } else {
            const uint16_t *src = (const uint16_t *)pixels + (size_t)y * w * c;
            for (size_t i = 0; i < (size_t)w * c; i++) {
                row[2 * i] = (unsigned char)(src[i] >> 8);
                row[2 * i + 1] = (unsigned char)(src[i] & 0xFF);
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (fclose(fp) != 0) return saa_set_error(SAA_EIO, "%s: cannot write PNG (%s)", path, strerror(errno));
    return SAA_OK;
}

int saa_png_save_u8(const char *path, const uint8_t *data, int w, int h, int c)
{
    if (c == 2) return saa_set_error(SAA_EINVAL, "%s: PNG writing supports 1, 3 or 4 channels", path);
    return png_write(path, data, w, h, c, 1);
}

int saa_png_save_gray16(const char *path, const uint16_t *data, int w, int h)
{
    return png_write(path, data, w, h, 1, 2);
}

/* In-memory PNG: libpng writes through a callback into a growing buffer. */
typedef struct {
    unsigned char *data;
    size_t len, cap;
    int oom;
} png_membuf;

static void png_mem_write(png_structp png, png_bytep bytes, png_size_t n)
{
    png_membuf *b = png_get_io_ptr(png);
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        unsigned char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, bytes, n);
    b->len += n;
}

static void png_mem_flush(png_structp png) { (void)png; }

int saa_png_encode_u8(const uint8_t *data, int w, int h, int c, uint8_t **png_out, size_t *len_out)
{
    static const int color_types[5] = {0, PNG_COLOR_TYPE_GRAY, 0, PNG_COLOR_TYPE_RGB, PNG_COLOR_TYPE_RGB_ALPHA};
    *png_out = NULL;
    *len_out = 0;
    if (!data || w <= 0 || h <= 0 || (c != 1 && c != 3 && c != 4))
        return saa_set_error(SAA_EINVAL, "png encode: cannot encode a %dx%dx%d image (channels 1, 3 or 4)", h, w, c);
    png_failure fail;
    png_membuf buf = {0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &fail, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(&png, NULL);
        return saa_set_error(SAA_ENOMEM, "png encode: out of memory");
    }
    png_membuf *volatile bp = &buf;
    if (setjmp(fail.jb)) {
        png_destroy_write_struct(&png, &info);
        free(bp->data);
        return saa_set_error(SAA_EIO, "png encode: %s", fail.msg);
    }
    png_set_write_fn(png, &buf, png_mem_write, png_mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, color_types[c], PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (int y = 0; y < h; y++) png_write_row(png, (png_const_bytep)(data + (size_t)y * w * c));
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    if (buf.oom) {
        free(buf.data);
        return saa_set_error(SAA_ENOMEM, "png encode: out of memory (%dx%dx%d)", h, w, c);
    }
    *png_out = buf.data;
    *len_out = buf.len;
    return SAA_OK;
}
