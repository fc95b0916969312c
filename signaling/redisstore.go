package signaling

import (
	"context"
	"errors"
	"time"
)

// RedisStore is the Store for several instances (being implemented).
type RedisStore struct{ MemoryStore }

// NewRedisStore connects to Redis at url.
func NewRedisStore(ctx context.Context, url string) (*RedisStore, error) {
	return nil, errors.New("signaling: Redis store not implemented yet")
}

// Close closes the Redis client.
func (r *RedisStore) Close() error { return nil }

var _ = time.Now
