package attachment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/image/bmp"

	"github.com/mqim/mqim/chat"
	"github.com/mqim/mqim/internal/testwait"
)

// clock is a settable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

var t0 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// newTestStore opens a store in a temp dir with a clock at t0.
func newTestStore(tb testing.TB, opts Options) (*Store, *clock) {
	tb.Helper()
	clk := &clock{t: t0}
	if opts.Dir == "" {
		opts.Dir = filepath.Join(tb.TempDir(), "attachments")
	}
	if opts.Now == nil {
		opts.Now = clk.Now
	}
	s, err := Open(opts)
	if err != nil {
		tb.Fatalf("Open() error = %v", err)
	}
	tb.Cleanup(func() { s.Close() })
	return s, clk
}

// mustSave saves b under filename and fails the test on error.
// must fails the test on a setup step's error.
func must(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func mustSave(tb testing.TB, s *Store, filename string, b []byte) []string {
	tb.Helper()
	names, err := s.Save(context.Background(), filename, bytes.NewReader(b))
	if err != nil {
		tb.Fatalf("Save(%q) error = %v", filename, err)
	}
	for _, n := range names {
		if !ValidName(n) {
			tb.Fatalf("Save(%q) name %q has not the <8 hex>/<8 hex>.<ext> shape", filename, n)
		}
	}
	return names
}

// mustRead opens rel and returns its bytes and the File.
func mustRead(tb testing.TB, s *Store, rel string) ([]byte, *File) {
	tb.Helper()
	f, err := s.Open(rel)
	if err != nil {
		tb.Fatalf("Open(%q) error = %v", rel, err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		tb.Fatal(err)
	}
	return b, f
}

// testImage returns a w×h image with a gradient, so scaling has content.
func testImage(w, h int) *image.RGBA {
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 128, 255})
		}
	}
	return m
}

func encodeImage(tb testing.TB, format string, m image.Image) []byte {
	tb.Helper()
	var buf bytes.Buffer
	var err error
	switch format {
	case "png":
		err = png.Encode(&buf, m)
	case "jpeg":
		err = jpeg.Encode(&buf, m, nil)
	case "gif":
		err = gif.Encode(&buf, m, nil)
	case "bmp":
		err = bmp.Encode(&buf, m)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// Ensure each thumbnailed format yields an original and a thumbnail in the
// same format, at most 128×128 with the aspect ratio kept.
func TestStore_Save_Images(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	for _, tc := range []struct {
		format, ext, ctype string
		w, h               int
		tw, th             int
	}{
		{"png", "png", "image/png", 400, 200, 128, 64},
		{"jpeg", "jpg", "image/jpeg", 150, 300, 64, 128},
		{"gif", "gif", "image/gif", 256, 256, 128, 128},
		{"bmp", "bmp", "image/bmp", 300, 100, 128, 43},
		{"png", "png", "image/png", 40, 30, 40, 30}, // small: same size
	} {
		t.Run(tc.format, func(t *testing.T) {
			src := encodeImage(t, tc.format, testImage(tc.w, tc.h))
			names := mustSave(t, s, "photo.dat", src)
			if len(names) != 2 {
				t.Fatalf("Save() = %q, want original and thumbnail", names)
			}
			if !strings.HasSuffix(names[0], "."+tc.ext) || names[1] != strings.TrimSuffix(names[0], "."+tc.ext)+".sm."+tc.ext {
				t.Fatalf("Save() = %q, want <a>/<b>.%[2]s and <a>/<b>.sm.%[2]s", names, tc.ext)
			}
			got, f := mustRead(t, s, names[0])
			if !bytes.Equal(got, src) || f.ContentType != tc.ctype || !f.Inline {
				t.Fatalf("original: %d bytes, type %q inline %v; want the %d uploaded bytes, %q inline", len(got), f.ContentType, f.Inline, len(src), tc.ctype)
			}
			tb, tf := mustRead(t, s, names[1])
			if tf.ContentType != tc.ctype {
				t.Errorf("thumbnail type = %q, want %q", tf.ContentType, tc.ctype)
			}
			m, format, err := image.Decode(bytes.NewReader(tb))
			if err != nil || format != tc.format {
				t.Fatalf("thumbnail decode: format %q, err %v; want %s", format, err, tc.format)
			}
			if b := m.Bounds(); b.Dx() != tc.tw || b.Dy() != tc.th {
				t.Errorf("thumbnail is %dx%d, want %dx%d", b.Dx(), b.Dy(), tc.tw, tc.th)
			}
		})
	}
}

// Ensure a JPEG's EXIF orientation is baked into its thumbnail: a sensor
// image stored landscape with orientation 6 (rotate 90° clockwise) gets a
// portrait thumbnail whose top-left pixel is the stored bottom-left.
func TestStore_Save_JPEGOrientation(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	m := image.NewRGBA(image.Rect(0, 0, 80, 40))
	for y := 0; y < 40; y++ {
		for x := 0; x < 80; x++ {
			c := color.RGBA{255, 255, 255, 255}
			if x < 40 && y >= 20 { // stored bottom-left quarter is black
				c = color.RGBA{0, 0, 0, 255}
			}
			m.SetRGBA(x, y, c)
		}
	}
	src := withEXIFOrientation(t, encodeImage(t, "jpeg", m), 6)
	if got := jpegOrientation(bytes.NewReader(src)); got != 6 {
		t.Fatalf("jpegOrientation() = %d, want 6", got)
	}
	names := mustSave(t, s, "IMG_0001.JPG", src)
	tb, _ := mustRead(t, s, names[1])
	th, err := jpeg.Decode(bytes.NewReader(tb))
	if err != nil {
		t.Fatal(err)
	}
	if b := th.Bounds(); b.Dx() != 40 || b.Dy() != 80 {
		t.Fatalf("thumbnail is %dx%d, want 40x80 (portrait)", b.Dx(), b.Dy())
	}
	if r, _, _, _ := th.At(5, 5).RGBA(); r > 0x4000 {
		t.Errorf("thumbnail top-left is light (r=%#x), want the dark stored bottom-left", r)
	}
	if r, _, _, _ := th.At(35, 75).RGBA(); r < 0xc000 {
		t.Errorf("thumbnail bottom-right is dark (r=%#x), want light", r)
	}
}

// withEXIFOrientation inserts an APP1 EXIF segment with one orientation tag
// (big-endian TIFF) right after the SOI marker of a JPEG.
func withEXIFOrientation(tb testing.TB, jpg []byte, o uint16) []byte {
	tb.Helper()
	be := binary.BigEndian
	tiff := []byte("MM")
	tiff = be.AppendUint16(tiff, 42)
	tiff = be.AppendUint32(tiff, 8)
	tiff = be.AppendUint16(tiff, 1)      // one entry
	tiff = be.AppendUint16(tiff, 0x0112) // Orientation
	tiff = be.AppendUint16(tiff, 3)      // SHORT
	tiff = be.AppendUint32(tiff, 1)
	tiff = be.AppendUint16(tiff, o)
	tiff = be.AppendUint16(tiff, 0)
	tiff = be.AppendUint32(tiff, 0) // no next IFD
	payload := append([]byte("Exif\x00\x00"), tiff...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	binary.BigEndian.PutUint16(seg[2:], uint16(len(payload)+2))
	out := append([]byte{}, jpg[:2]...)
	out = append(out, seg...)
	out = append(out, payload...)
	return append(out, jpg[2:]...)
}

// Ensure orientate maps each EXIF orientation as the standard table says,
// by following where the top-left pixel of a 3×2 image lands.
func TestOrientate(t *testing.T) {
	m := image.NewRGBA(image.Rect(0, 0, 3, 2))
	mark := color.RGBA{255, 0, 0, 255}
	m.SetRGBA(0, 0, mark)
	for _, tc := range []struct {
		o          int
		w, h, x, y int
	}{
		{1, 3, 2, 0, 0}, {2, 3, 2, 2, 0}, {3, 3, 2, 2, 1}, {4, 3, 2, 0, 1},
		{5, 2, 3, 0, 0}, {6, 2, 3, 1, 0}, {7, 2, 3, 1, 2}, {8, 2, 3, 0, 2},
	} {
		out := orientate(m, tc.o)
		if b := out.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
			t.Errorf("orientate(%d) is %dx%d, want %dx%d", tc.o, b.Dx(), b.Dy(), tc.w, tc.h)
			continue
		}
		if out.RGBAAt(tc.x, tc.y) != mark {
			t.Errorf("orientate(%d): top-left pixel not at (%d,%d)", tc.o, tc.x, tc.y)
		}
	}
}

func TestFit(t *testing.T) {
	for _, tc := range []struct{ w, h, tw, th int }{
		{128, 128, 128, 128}, {1000, 1000, 128, 128}, {1000, 10, 128, 1}, {10000, 10, 128, 1},
		{10, 1000, 1, 128}, {300, 200, 128, 85}, {200, 300, 85, 128}, {5, 7, 5, 7},
	} {
		if tw, th := fit(tc.w, tc.h, 128); tw != tc.tw || th != tc.th {
			t.Errorf("fit(%d, %d) = %d, %d; want %d, %d", tc.w, tc.h, tw, th, tc.tw, tc.th)
		}
	}
}

// Ensure the stored extension follows the bytes, and a name's extension is
// used only when it cannot mislead.
func TestStore_Save_Types(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	binary := append([]byte{0, 1, 2, 3, 0xfe, 0xff}, bytes.Repeat([]byte{0x80, 0}, 100)...)
	for _, tc := range []struct {
		desc, filename string
		body           []byte
		ext, ctype     string
		inline         bool
	}{
		{"Text", "notes.md", []byte("hello, world\n"), "txt", "text/plain; charset=utf-8", true},
		{"HTMLNamedPNG", "x.png", []byte("<!DOCTYPE html><script>alert(1)</script>"), "bin", "application/octet-stream", false},
		{"HTMLNamedTXT", "x.txt", []byte("<html><body onload=alert(1)>"), "bin", "application/octet-stream", false},
		{"HTMLNamedHTML", "page.html", []byte("<html><script>alert(1)</script>"), "bin", "application/octet-stream", false},
		{"HTMLNamedMD", "page.md", []byte("<html><script>alert(1)</script>"), "md", "application/octet-stream", false},
		{"SVGAsText", "logo.svg", []byte(`<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>`), "txt", "text/plain; charset=utf-8", true},
		{"XML", "a.svg", []byte(`<?xml version="1.0"?><svg/>`), "bin", "application/octet-stream", false},
		{"BinaryDocx", "report.DOCX", binary, "docx", "application/octet-stream", false},
		{"BinaryVoice", "voice.amr", binary, "amr", "audio/amr", true},
		{"BinaryClaimsPNG", "fake.png", binary, "bin", "application/octet-stream", false},
		{"BinaryNoName", "", binary, "bin", "application/octet-stream", false},
		{"BinaryBadExt", "a.ex-e", binary, "bin", "application/octet-stream", false},
		{"BinaryLongExt", "a.abcdefghi", binary, "bin", "application/octet-stream", false},
		{"Traversal", "../../etc/passwd", []byte("root:x:0:0\n"), "txt", "text/plain; charset=utf-8", true},
		{"WindowsPath", `C:\Users\x\..\evil.amr`, binary, "amr", "audio/amr", true},
		{"PDF", "doc.pdf", []byte("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"), "pdf", "application/pdf", false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			names := mustSave(t, s, tc.filename, tc.body)
			if len(names) != 1 {
				t.Fatalf("Save() = %q, want one name", names)
			}
			if !strings.HasSuffix(names[0], "."+tc.ext) {
				t.Errorf("Save() = %q, want extension %q", names[0], tc.ext)
			}
			got, f := mustRead(t, s, names[0])
			if !bytes.Equal(got, tc.body) {
				t.Errorf("stored bytes differ")
			}
			if f.ContentType != tc.ctype || f.Inline != tc.inline {
				t.Errorf("served as %q inline=%v, want %q inline=%v", f.ContentType, f.Inline, tc.ctype, tc.inline)
			}
		})
	}
	// Nothing may have been written outside the store.
	if _, err := os.Stat(filepath.Join(s.opts.Dir, "..", "etc")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("upload escaped the store: %v", err)
	}
}

// Ensure the size limit is exact, and empty or broken uploads are refused.
func TestStore_Save_Errors(t *testing.T) {
	s, _ := newTestStore(t, Options{MaxSize: 1000})
	ctx := context.Background()
	if _, err := s.Save(ctx, "a.bin", bytes.NewReader(make([]byte, 1000))); err != nil {
		t.Errorf("Save(MaxSize bytes) error = %v", err)
	}
	for _, tc := range []struct {
		desc string
		r    io.Reader
		code int
	}{
		{"TooLarge", bytes.NewReader(make([]byte, 1001)), chat.CodeFileTooLarge},
		{"TooLargeStream", io.LimitReader(zeros{}, 1<<30), chat.CodeFileTooLarge},
		{"Empty", bytes.NewReader(nil), chat.CodeUpload},
		{"ReadError", io.MultiReader(bytes.NewReader([]byte("abc")), errReader{}), chat.CodeUpload},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			names, err := s.Save(ctx, "a.txt", tc.r)
			if chat.ErrorCode(err) != tc.code {
				t.Fatalf("Save() = %q, %v; want code %d", names, err, tc.code)
			}
		})
	}
	// Failed uploads leave nothing behind, not even in .tmp.
	left, _ := os.ReadDir(filepath.Join(s.opts.Dir, tmpDir))
	if len(left) != 0 {
		t.Errorf(".tmp holds %d files after the uploads", len(left))
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("connection reset") }

// Ensure an image whose header claims a huge canvas is stored without a
// thumbnail, and never decoded.
func TestStore_Save_DecompressionBomb(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	bomb := pngHeader(50000, 50000)
	names := mustSave(t, s, "bomb.png", bomb)
	if len(names) != 1 || !strings.HasSuffix(names[0], ".png") {
		t.Fatalf("Save() = %q, want only the original", names)
	}
	// An undecodable image (valid header, no data) also gets no thumbnail.
	names = mustSave(t, s, "broken.png", pngHeader(10, 10))
	if len(names) != 1 {
		t.Fatalf("Save() = %q, want only the original", names)
	}
}

// pngHeader returns a PNG signature and IHDR chunk (RGBA, 8 bit) with no
// image data: enough for DecodeConfig.
func pngHeader(w, h uint32) []byte {
	be := binary.BigEndian
	ihdr := []byte("IHDR")
	ihdr = be.AppendUint32(ihdr, w)
	ihdr = be.AppendUint32(ihdr, h)
	ihdr = append(ihdr, 8, 6, 0, 0, 0)
	out := []byte("\x89PNG\r\n\x1a\n")
	out = be.AppendUint32(out, uint32(len(ihdr)-4))
	out = append(out, ihdr...)
	return be.AppendUint32(out, crc32.ChecksumIEEE(ihdr))
}

// Ensure Open refuses anything that is not a stored file.
func TestStore_Open_NotFound(t *testing.T) {
	s, _ := newTestStore(t, Options{})
	names := mustSave(t, s, "a.txt", []byte("hello"))
	dir := names[0][:8]
	must(t, os.WriteFile(filepath.Join(s.opts.Dir, "..", "secret.txt"), []byte("secret"), 0o600))
	must(t, os.Symlink("../../secret.txt", filepath.Join(s.opts.Dir, dir, "0000abcd.txt")))
	must(t, os.Symlink(names[0][9:], filepath.Join(s.opts.Dir, dir, "0000abce.txt")))
	must(t, os.Mkdir(filepath.Join(s.opts.Dir, dir, "0000abcf.txt"), 0o700))
	for _, rel := range []string{
		"", ".", "..", "../secret.txt", dir, dir + "/", dir + "/../" + names[0],
		"/" + names[0], names[0] + "/", strings.ToUpper(names[0]), dir + "/0000abcd.txt", dir + "/0000abce.txt",
		dir + "/0000abcf.txt", "00000000/00000000.txt", dir + "/00000000.txt", names[0][:len(names[0])-4] + ".sm.txt",
		".tmp/" + names[0][9:], dir + "\\" + names[0][9:], dir + "/" + names[0][9:] + "\x00",
	} {
		if f, err := s.Open(rel); chat.ErrorCode(err) != chat.CodeNotFound {
			if f != nil {
				f.Close()
			}
			t.Errorf("Open(%q) error = %v, want code 5004", rel, err)
		}
	}
}

// Ensure the sweeper deletes expired files, thumbnails and emptied
// directories, keeps fresh files and foreign names, and that an expired
// file is not served even before a sweep.
func TestStore_Sweep(t *testing.T) {
	s, clk := newTestStore(t, Options{Retention: 7 * 24 * time.Hour})
	old := mustSave(t, s, "a.png", encodeImage(t, "png", testImage(300, 300)))
	clk.Set(t0.Add(5 * 24 * time.Hour))
	fresh := mustSave(t, s, "b.txt", []byte("fresh"))
	foreign := filepath.Join(s.opts.Dir, "README")
	must(t, os.WriteFile(foreign, []byte("not ours"), 0o600))

	if n, err := s.Sweep(t0.Add(6 * 24 * time.Hour)); n != 0 || err != nil {
		t.Fatalf("Sweep(+6d) = %d, %v; want 0, nil", n, err)
	}
	clk.Set(t0.Add(7 * 24 * time.Hour))
	if _, err := s.Open(old[0]); chat.ErrorCode(err) != chat.CodeNotFound {
		t.Errorf("Open(expired) error = %v, want 5004 before any sweep", err)
	}
	if n, err := s.Sweep(t0.Add(7 * 24 * time.Hour)); n != 2 || err != nil {
		t.Fatalf("Sweep(+7d) = %d, %v; want 2 (file and thumbnail), nil", n, err)
	}
	if _, err := os.Stat(filepath.Join(s.opts.Dir, old[0][:8])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("emptied directory still there: %v", err)
	}
	if got, _ := mustRead(t, s, fresh[0]); string(got) != "fresh" {
		t.Errorf("fresh file = %q", got)
	}
	if _, err := os.Stat(foreign); err != nil {
		t.Errorf("foreign file removed: %v", err)
	}
	if n, err := s.Sweep(t0.Add(12 * 24 * time.Hour)); n != 1 || err != nil {
		t.Fatalf("Sweep(+12d) = %d, %v; want 1, nil", n, err)
	}
}

// Ensure the background sweeper runs on its own, with the injected clock,
// and stops on Close.
func TestStore_Start(t *testing.T) {
	s, clk := newTestStore(t, Options{Retention: time.Hour, SweepInterval: 10 * time.Millisecond})
	names := mustSave(t, s, "a.txt", []byte("x"))
	clk.Set(t0.Add(2 * time.Hour))
	s.Start()
	path := filepath.Join(s.opts.Dir, names[0])
	testwait.Until(t, "the sweeper to remove the expired file", 5*time.Second, func() bool {
		_, err := os.Stat(path)
		return errors.Is(err, os.ErrNotExist)
	})
	if err := s.Close(); err != nil {
		t.Fatalf("Close() error = %v", err)
	}
}

// Ensure leftovers of interrupted uploads are cleared on Open and by the
// sweeper once old.
func TestStore_TmpCleanup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "att")
	must(t, os.MkdirAll(filepath.Join(dir, tmpDir), 0o700))
	must(t, os.WriteFile(filepath.Join(dir, tmpDir, "crash"), []byte("partial"), 0o600))
	s, _ := newTestStore(t, Options{Dir: dir})
	if left, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(left) != 0 {
		t.Fatalf("Open left %d files in .tmp", len(left))
	}
	stale := filepath.Join(dir, tmpDir, "stale")
	must(t, os.WriteFile(stale, []byte("partial"), 0o600))
	must(t, os.Chtimes(stale, t0, t0))
	if _, err := s.Sweep(t0.Add(30 * time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); err != nil {
		t.Fatalf("recent upload removed: %v", err)
	}
	if _, err := s.Sweep(t0.Add(2 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stale upload kept: %v", err)
	}
}

func TestNameExt(t *testing.T) {
	for in, want := range map[string]string{
		"a.png": "png", "A.PNG": "png", "a.tar.gz": "gz", "a": "", "a.": "", ".bashrc": "bashrc",
		"a.abcdefgh": "abcdefgh", "a.abcdefghi": "", "a.p-g": "", "a.ü": "", "../../x.sh": "sh",
		`dir\a.JPG`: "jpg", "a.png/": "", "a.png\x00.txt": "txt",
	} {
		if got := nameExt(in); got != want {
			t.Errorf("nameExt(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestURL(t *testing.T) {
	if got := URL("https://im.example.com/base/", "0123abcd/89abcdef.png"); got != "https://im.example.com/base/attachments/0123abcd/89abcdef.png" {
		t.Errorf("URL() = %q", got)
	}
}
