package attachment

import (
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"

	"golang.org/x/image/bmp"
)

// sniffLen is how many leading bytes http.DetectContentType looks at.
const sniffLen = 512

// kind is what the bytes of an upload turned out to be.
type kind struct {
	// mime is the sniffed media type without parameters.
	mime string
	// image is true when a decoder read the header of a format we make
	// thumbnails of; format, config then describe it.
	image  bool
	format string // "png", "jpeg", "gif", "bmp"
	config image.Config
}

// imageConfigs are the formats that get a thumbnail, keyed by the type
// DetectContentType reports. The decoder's header check confirms the sniff.
var imageConfigs = map[string]struct {
	format string
	config func(io.Reader) (image.Config, error)
}{
	"image/png":  {"png", png.DecodeConfig},
	"image/jpeg": {"jpeg", jpeg.DecodeConfig},
	"image/gif":  {"gif", gif.DecodeConfig},
	"image/bmp":  {"bmp", bmp.DecodeConfig},
}

// sniff classifies an upload from its first bytes head and, for images,
// the decoder's reading of the header from f.
func sniff(head []byte, f io.ReaderAt) kind {
	mt, _, err := mime.ParseMediaType(http.DetectContentType(head))
	if err != nil {
		mt = "application/octet-stream"
	}
	k := kind{mime: mt}
	if ic, ok := imageConfigs[mt]; ok {
		if cfg, err := ic.config(io.NewSectionReader(f, 0, 1<<62)); err == nil && cfg.Width > 0 && cfg.Height > 0 {
			k.image, k.format, k.config = true, ic.format, cfg
		}
	}
	return k
}

// extBySniff maps a sniffed media type to the extension the file is stored
// under. A type listed here is trusted from the bytes alone.
var extBySniff = map[string]string{
	"image/png":                "png",
	"image/jpeg":               "jpg",
	"image/gif":                "gif",
	"image/bmp":                "bmp",
	"image/webp":               "webp",
	"audio/mpeg":               "mp3",
	"audio/wave":               "wav",
	"audio/aiff":               "aiff",
	"audio/midi":               "mid",
	"application/ogg":          "ogg",
	"video/mp4":                "mp4",
	"video/webm":               "webm",
	"video/avi":                "avi",
	"application/pdf":          "pdf",
	"text/plain":               "txt",
	"application/octet-stream": "", // unknown binary: see chooseExt
}

// served maps a stored extension to the Content-Type it is served with and
// whether it may be shown inline. Only passive types appear: nothing a
// browser would run (HTML, SVG, XML, JavaScript). Every other extension is
// served as application/octet-stream, as a download.
var served = map[string]struct {
	ctype  string
	inline bool
}{
	"png":  {"image/png", true},
	"jpg":  {"image/jpeg", true},
	"gif":  {"image/gif", true},
	"bmp":  {"image/bmp", true},
	"webp": {"image/webp", true},
	"mp3":  {"audio/mpeg", true},
	"wav":  {"audio/wav", true},
	"aiff": {"audio/aiff", true},
	"mid":  {"audio/midi", true},
	"ogg":  {"application/ogg", true},
	"mp4":  {"video/mp4", true},
	"webm": {"video/webm", true},
	"avi":  {"video/x-msvideo", true},
	"txt":  {"text/plain; charset=utf-8", true},
	// PDF viewers run scripts of their own: offer it as a download.
	"pdf": {"application/pdf", false},
	// Mobile voice and video formats that DetectContentType cannot
	// recognise. They are accepted from the upload's name when the bytes
	// are binary (see chooseExt), which lets native players pick them up.
	"amr":  {"audio/amr", true},
	"m4a":  {"audio/mp4", true},
	"aac":  {"audio/aac", true},
	"3gp":  {"video/3gpp", true},
	"mov":  {"video/quicktime", true},
	"heic": {"image/heic", true},
}

// byName lists the served extensions that may come from the upload's name
// when the bytes are unrecognised binary.
var byName = map[string]bool{"amr": true, "m4a": true, "aac": true, "3gp": true, "mov": true, "heic": true}

// denied are extensions never stored, even as downloads, so that the store
// directory stays harmless if someone ever points a static web server at
// it (which would pick the type from the extension).
var denied = map[string]bool{
	"htm": true, "html": true, "shtml": true, "xht": true, "xhtml": true, "mht": true, "mhtml": true,
	"svg": true, "svgz": true, "xml": true, "xsl": true, "xslt": true,
	"js": true, "mjs": true, "jsx": true, "css": true, "swf": true, "wasm": true,
	"php": true, "phtml": true, "phar": true, "asp": true, "aspx": true, "jsp": true, "cgi": true,
}

// chooseExt picks the stored extension: the sniffed type's own extension
// when the bytes are recognised; otherwise a safe extension from the
// upload's name, as long as it does not claim a type the bytes were not
// (an HTML file named x.png is stored as .bin); otherwise "bin".
func chooseExt(k kind, filename string) string {
	if ext := extBySniff[k.mime]; ext != "" {
		return ext
	}
	ext := nameExt(filename)
	switch {
	case ext == "" || ext == "sm" || denied[ext]:
		return "bin"
	case served[ext].ctype != "":
		// The name claims a served type the sniff did not confirm: trust it
		// only for the listed binary formats the sniffer cannot see.
		if k.mime == "application/octet-stream" && byName[ext] {
			return ext
		}
		return "bin"
	}
	return ext
}

// nameExt returns the extension of filename if it is 1 to 8 lowercase
// ASCII letters and digits (after lowering), else "".
func nameExt(filename string) string {
	// Clients send Windows paths too; only the last element counts.
	filename = filename[strings.LastIndexAny(filename, `/\`)+1:]
	ext := strings.ToLower(path.Ext(filename))
	if len(ext) < 2 || len(ext) > 9 {
		return ""
	}
	ext = ext[1:]
	for i := 0; i < len(ext); i++ {
		c := ext[i]
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') {
			return ""
		}
	}
	return ext
}

// serveType returns the Content-Type of a stored extension and whether it
// may be displayed inline.
func serveType(ext string) (string, bool) {
	if t, ok := served[ext]; ok {
		return t.ctype, t.inline
	}
	return "application/octet-stream", false
}
