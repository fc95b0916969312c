# Run by scripts/test-third-party.sh inside a copy of upstream quic-go
# with our sources over it; fixes upstream tests that the patches need.
set -euo pipefail
# NewSentPacketHandler takes Config.LossTolerance last: upstream's tests
# pass 0 (off, upstream's behaviour). Each call ends its arguments with
# the logger, on a line of its own.
f=internal/ackhandler/sent_packet_handler_test.go
[ "$(grep -c 'NewSentPacketHandler(' $f)" = "$(grep -c 'utils\.DefaultLogger,$' $f)" ]
sed -i 's/utils\.DefaultLogger,$/utils.DefaultLogger, 0,/' $f
# Config has a LossTolerance field, which the test of Clone and
# populateConfig must set like every other field.
f=config_test.go
[ "$(grep -c '^		default:$' $f)" = 1 ]
sed -i 's/^\t\tdefault:$/\t\tcase "LossTolerance":\n\t\t\tf.Set(reflect.ValueOf(0.02))\n\t\tdefault:/' $f
