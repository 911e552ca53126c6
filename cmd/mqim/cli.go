package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
)

// The command line (docs/operations.md): mqim [serve] [--config FILE],
// version, check-config, backup, restore, health, help. No subcommand is
// serve, so `mqim --config FILE` starts the server as it always did; the
// old flags --check-config and --version still work.

const usage = `usage: mqim [command] [flags]

commands:
  serve         start the server (the default: mqim --config FILE)
  version       print the version
  check-config  validate the configuration, the listener addresses and the data directory
  backup        write an online backup: mqim backup --out FILE [--url http://host:port]
  restore       restore a backup into an empty data directory: mqim restore --in FILE
  health        exit 0 when the server's /readyz answers 200, else 1 [--url http://host:port]
  help          print this text

flags (every command that reads the configuration):
  --config FILE  a YAML config file (configs/mqim.yaml documents every option);
                 MQIM_* environment variables override it

Exit status: 0 success, 1 failure, 2 usage error.
`

// cli is one run of the command line.
type cli struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

// exitUsage is the exit status of a usage error.
const exitUsage = 2

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := (&cli{stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}).run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

// run dispatches args to a command and returns the exit status.
func (c *cli) run(ctx context.Context, args []string) int {
	cmd, rest := "serve", args
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, rest = args[0], args[1:]
	} else {
		// The flags of old: --version, --check-config.
		for i, a := range args {
			switch strings.TrimLeft(a, "-") {
			case "version":
				if len(args) != 1 {
					return c.usageError("--version takes no other arguments")
				}
				cmd, rest = "version", nil
			case "check-config":
				cmd, rest = "check-config", slices.Delete(slices.Clone(args), i, i+1)
			case "h", "help":
				cmd, rest = "help", nil
			}
		}
	}
	for _, a := range rest {
		if a == "-h" || a == "-help" || a == "--help" {
			cmd = "help"
		}
	}
	switch cmd {
	case "serve":
		return c.serve(ctx, rest)
	case "version":
		if _, err := c.parse("version", rest, nil); err != nil {
			return c.usageError(err.Error())
		}
		_, _ = fmt.Fprintln(c.stdout, "mqim", version)
		return 0
	case "check-config":
		return c.checkConfig(rest)
	case "backup":
		return c.backup(ctx, rest)
	case "restore":
		return c.restore(ctx, rest)
	case "health":
		return c.health(ctx, rest)
	case "help":
		_, _ = io.WriteString(c.stdout, usage)
		return 0
	}
	return c.usageError(fmt.Sprintf("unknown command %q", cmd))
}

// usageError prints msg and the usage on stderr.
func (c *cli) usageError(msg string) int {
	_, _ = fmt.Fprintf(c.stderr, "mqim: %s\n\n%s", msg, usage)
	return exitUsage
}

// fail prints a command's error on stderr.
func (c *cli) fail(cmd string, err error) int {
	_, _ = fmt.Fprintf(c.stderr, "mqim %s: %v\n", cmd, err)
	return 1
}

// parse parses a command's flags; define adds the command's own. Every
// command takes --config (but version); positional arguments are refused.
func (c *cli) parse(cmd string, args []string, define func(fs *flag.FlagSet)) (configPath string, err error) {
	fs := flag.NewFlagSet("mqim "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // usageError prints the whole usage instead
	if cmd != "version" {
		fs.StringVar(&configPath, "config", "", "a YAML config file")
	}
	if define != nil {
		define(fs)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", fmt.Errorf("mqim %s: help requested", cmd)
		}
		return "", fmt.Errorf("mqim %s: %w", cmd, err)
	}
	if fs.NArg() > 0 {
		return "", fmt.Errorf("mqim %s: unexpected argument %q", cmd, fs.Arg(0))
	}
	return configPath, nil
}

// serve runs the server until SIGINT/SIGTERM. Start-up failures are one
// log line at level fatal, in the log's format (JSON unless log.pretty).
func (c *cli) serve(ctx context.Context, args []string) int {
	path, err := c.parse("serve", args, nil)
	if err != nil {
		return c.usageError(err.Error())
	}
	m := NewMain()
	m.Log = zerolog.New(c.stderr).With().Timestamp().Logger()
	m.Out = c.stdout
	cfg, err := LoadConfig(path, c.getenv)
	if err != nil {
		// The configuration is unusable, so its log format is unknown:
		// the default, JSON.
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("invalid configuration")
		return 1
	}
	m.Config = cfg
	if err := m.Run(ctx); err != nil {
		m.Log.WithLevel(zerolog.FatalLevel).Err(err).Msg("start-up failed")
		_ = m.Close() // exiting on the Run error already logged
		return 1
	}
	<-ctx.Done()
	m.Log.Info().Msg("shutting down")
	if err := m.Close(); err != nil {
		m.Log.Error().Err(err).Msg("close")
		return 1
	}
	return 0
}

// checkConfig validates the configuration and what it points at without
// starting anything.
func (c *cli) checkConfig(args []string) int {
	path, err := c.parse("check-config", args, nil)
	if err != nil {
		return c.usageError(err.Error())
	}
	cfg, err := LoadConfig(path, c.getenv)
	if err != nil {
		return c.fail("check-config", err)
	}
	var errs []error
	if err := checkDataDir(cfg.DataDir); err != nil {
		errs = append(errs, err)
	}
	if _, err := savedCredentials(cfg); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return c.fail("check-config", err)
	}
	_, _ = fmt.Fprintln(c.stdout, "config ok")
	return 0
}

// health asks the server's /readyz: ready means the store answers and
// the listeners are bound, which is what a container health check wants.
func (c *cli) health(ctx context.Context, args []string) int {
	var base string
	path, err := c.parse("health", args, func(fs *flag.FlagSet) {
		fs.StringVar(&base, "url", "", "the server's REST base URL (default: from http.addr)")
	})
	if err != nil {
		return c.usageError(err.Error())
	}
	cfg, err := LoadConfig(path, c.getenv)
	if err != nil {
		return c.fail("health", err)
	}
	if base == "" {
		base = localURL(cfg.HTTP.Addr)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(base, "/")+"/readyz", nil)
	if err != nil {
		return c.fail("health", err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return c.fail("health", err)
	}
	_ = res.Body.Close() // only the status matters
	if res.StatusCode != http.StatusOK {
		return c.fail("health", fmt.Errorf("%s: %s", req.URL, res.Status))
	}
	_, _ = fmt.Fprintln(c.stdout, "ok")
	return 0
}

// localURL is the base URL of a server listening on addr, from the same
// machine: a listener on every interface is asked on 127.0.0.1.
func localURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// storeDir is where the Badger store lives in a data directory.
func storeDir(dataDir string) string { return filepath.Join(dataDir, "db") }
