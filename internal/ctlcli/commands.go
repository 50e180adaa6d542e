package ctlcli

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/contactstore/contactstore/internal/client"
	"github.com/spf13/cobra"
)

func putCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "put CONTACT PHONE",
		Short: "Insert or replace a contact (returns once it is durable)",
		Args:  cobra.ExactArgs(2),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := g.checkUser(); err != nil {
				return err
			}
			if err := checkContact(args[0], args[1]); err != nil {
				return err
			}
			return g.withFailover(func(c *client.Client) error {
				if err := c.Update(args[0], args[1]); err != nil {
					return err
				}
				_, err := c.List() // the protocol's only acknowledgement
				return err
			})
		},
	}
}

func delCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "del CONTACT",
		Short: "Delete a contact (absent is not an error)",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := g.checkUser(); err != nil {
				return err
			}
			if err := checkContact(args[0], ""); err != nil {
				return err
			}
			return g.withFailover(func(c *client.Client) error {
				if err := c.Delete(args[0]); err != nil {
					return err
				}
				_, err := c.List()
				return err
			})
		},
	}
}

func listCmd(g *globals) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the user's contacts, sorted by name",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := g.checkUser(); err != nil {
				return err
			}
			got, err := g.book()
			if err != nil {
				return err
			}
			if asJSON {
				if got == nil {
					got = []client.Contact{}
				}
				enc := json.NewEncoder(g.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(got)
			}
			for _, c := range got {
				fmt.Fprintf(g.stdout, "%s\t%s\n", c.Name, c.Phone)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON array of {name, phone}")
	return cmd
}

func exportCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Write the user's contacts as CSV to stdout: a header row name,phone, then one row per contact",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := g.checkUser(); err != nil {
				return err
			}
			got, err := g.book()
			if err != nil {
				return err
			}
			w := csv.NewWriter(g.stdout)
			_ = w.Write(csvHeader) // an empty name is written as an empty field: ,PHONE
			for _, c := range got {
				_ = w.Write([]string{c.Name, c.Phone})
			}
			w.Flush()
			return w.Error()
		},
	}
}

// importChunk is how many Updates are sent between two ListAll
// acknowledgements: the unit that is resent on failover.
const importChunk = 5000

func importCmd(g *globals) *cobra.Command {
	var noProgress bool
	var header string
	cmd := &cobra.Command{
		Use:   "import FILE.csv",
		Short: "Put every row (name,phone) of a CSV file; '-' reads stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := g.checkUser(); err != nil {
				return err
			}
			rows, err := readCSV(args[0], header)
			if err != nil {
				return err
			}
			bar := newProgress(g.stderr, len(rows), !noProgress)
			for start := 0; start < len(rows); start += importChunk {
				chunk := rows[start:min(start+importChunk, len(rows))]
				if err := g.withFailover(func(c *client.Client) error {
					for _, r := range chunk {
						if err := c.Update(r[0], r[1]); err != nil {
							return err
						}
					}
					_, err := c.List()
					return err
				}); err != nil {
					bar.finish()
					return fmt.Errorf("import stopped after %d of %d rows: %w", start, len(rows), err)
				}
				bar.set(start + len(chunk))
			}
			bar.finish()
			fmt.Fprintf(g.stderr, "imported %d contacts for %s\n", len(rows), g.user)
			return nil
		},
	}
	cmd.Flags().BoolVar(&noProgress, "no-progress", false, "do not draw the progress bar")
	cmd.Flags().StringVar(&header, "header", "auto", "auto: a first row name,phone (or contact,phone) is a header; yes: the first row is a header; no: every row is a contact")
	return cmd
}

// csvHeader is the header row export writes.
var csvHeader = []string{"name", "phone"}

// isHeader reports whether a first row reads as a header in auto mode: its
// first field is the word name or contact and its second the word phone.
// A contact row never has that shape unless a contact is literally called
// "name" with the phone "phone" (--header no imports it); an empty name,
// an ordinary contact name, is never taken for a header.
func isHeader(rec []string) bool {
	return (strings.EqualFold(rec[0], "name") || strings.EqualFold(rec[0], "contact")) && strings.EqualFold(rec[1], "phone")
}

// readCSV reads and validates every row before anything is sent, so a bad
// file changes nothing. header is auto, yes or no (see importCmd). A row
// whose first field is empty (",PHONE") is the contact with the empty name.
func readCSV(path, header string) ([][2]string, error) {
	if header != "auto" && header != "yes" && header != "no" {
		return nil, fmt.Errorf("--header %q: want auto, yes or no", header)
	}
	var r io.Reader = os.Stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = 2
	cr.TrimLeadingSpace = true
	var rows [][2]string
	for first := true; ; first = false {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		line, _ := cr.FieldPos(0)
		if first && (header == "yes" || header == "auto" && isHeader(rec)) {
			continue
		}
		if err := checkContact(rec[0], rec[1]); err != nil {
			return nil, fmt.Errorf("%s line %d: %w", path, line, err)
		}
		rows = append(rows, [2]string{rec[0], rec[1]})
	}
	return rows, nil
}

// book lists the user's contacts from the first server that answers.
func (g *globals) book() ([]client.Contact, error) {
	var got []client.Contact
	err := g.withFailover(func(c *client.Client) (err error) {
		got, err = c.List()
		return err
	})
	return got, err
}
