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
