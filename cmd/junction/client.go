package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/junctionhq/junction/internal/platform/config"
)

// client calls the admin REST API; every CLI command but serve uses it.
type client struct {
	url, key string
	http     *http.Client
}

// addClientFlags adds --url and --key to a command tree.
func addClientFlags(cmd *cobra.Command) *client {
	c := &client{http: &http.Client{Timeout: 60 * time.Second}}
	def := os.Getenv("JUNCTION_URL")
	if def == "" {
		def = "http://" + config.DefaultAddr
	}
	cmd.PersistentFlags().StringVar(&c.url, "url", def, "Junction server URL (env JUNCTION_URL)")
	cmd.PersistentFlags().StringVar(&c.key, "key", "", "admin key (default: env JUNCTION_ADMIN_KEY)")
	return c
}

func (c *client) do(method, path string, body, out any) error {
	key := c.key
	if key == "" {
		key = os.Getenv("JUNCTION_ADMIN_KEY")
	}
	if key == "" {
		return fmt.Errorf("no admin key: pass --key or set JUNCTION_ADMIN_KEY")
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, strings.TrimRight(c.url, "/")+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach Junction at %s: %w", c.url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 400 {
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		if json.Unmarshal(data, &e) == nil && e.Error.Message != "" {
			return fmt.Errorf("%s (HTTP %d)", e.Error.Message, resp.StatusCode)
		}
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}
