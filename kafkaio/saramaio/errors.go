package saramaio

import (
	"errors"
	"fmt"
	"strings"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
)

// kafkaErr hands err on as the layer carries Kafka's errors: a Kafka code as kerr's error, a
// record too large for sarama's own check as MESSAGE_TOO_LARGE, a setting sarama refuses as
// a failure.SettingError; what else sarama says (no broker left, a closed client) as it is,
// which the failure table waits out.
func kafkaErr(err error) error {
	var ke sarama.KError
	var cfg sarama.ConfigurationError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ke):
		return fmt.Errorf("%w", kerr.ErrorForCode(int16(ke)))
	case errors.As(err, &cfg) && strings.Contains(string(cfg), "larger than configured Producer.MaxMessageBytes"):
		return fmt.Errorf("%s: %w", string(cfg), kerr.MessageTooLarge)
	case errors.As(err, &cfg):
		return settingError{cfg}
	}
	return err
}

// settingError is a setting sarama refuses.
type settingError struct{ err sarama.ConfigurationError }

func (e settingError) Error() string { return "sarama: " + string(e.err) }
func (e settingError) Unwrap() error { return e.err }

// Setting marks the error as a setting's: waiting will not change it.
func (settingError) Setting() {}
