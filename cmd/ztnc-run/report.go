package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// reportError prints ztnc-run's final error: one line on stderr, or one JSON record with
// --log-format json (from the command line or ZTNC_LOG_FORMAT), so that a log collector
// reading JSON sees why ztnc-run stopped.
func reportError(root *cobra.Command, msg string) {
	if f := root.PersistentFlags().Lookup("log-format"); f != nil && f.Value.String() == "json" {
		slog.New(slog.NewJSONHandler(os.Stderr, nil)).Error(msg)
		return
	}
	fmt.Fprintln(os.Stderr, "ztnc-run: "+msg)
}

// commandLogger is the logger of a subcommand, from the root's --verbose and --log-format.
func commandLogger(cmd *cobra.Command) (*slog.Logger, error) {
	verbose, _ := cmd.Flags().GetBool("verbose")
	format, _ := cmd.Flags().GetString("log-format")
	if format == "" {
		format = "text"
	}
	return newLogger(&runOptions{verbose: verbose, logFormat: format})
}
