package session

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/redis/go-redis/v9"
)

// Start subscribes to the revocation channel and delivers what any replica
// publishes to OnRevoke until Close. It returns once Redis has confirmed
// the subscription; if ctx ends first it returns ctx's error and keeps
// trying in the background. Without OnRevoke it does nothing.
//
// Revocations take effect without it: RedisStore keeps no local copies, so
// a deleted session is gone for every replica at once. The channel is for
// what a replica holds beyond the store, such as open WebSocket connections
// of a revoked session. Redis pub/sub delivers at most once: a message
// published while a replica is reconnecting is lost to it.
func (s *RedisStore) Start(ctx context.Context) error {
	if s.onRevoke == nil {
		return nil
	}
	s.mu.Lock()
	if s.sub != nil {
		s.mu.Unlock()
		return errors.New("session: RedisStore already started")
	}
	sub := s.c.Subscribe(context.WithoutCancel(ctx), s.channel())
	s.sub = sub
	s.done = make(chan struct{})
	s.mu.Unlock()

	ready := make(chan struct{})
	go s.listen(sub, ready)
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *RedisStore) listen(sub *redis.PubSub, ready chan struct{}) {
	defer close(s.done)
	subscribed := false
	for m := range sub.ChannelWithSubscriptions() {
		switch m := m.(type) {
		case *redis.Subscription:
			if !subscribed {
				subscribed = true
				close(ready)
			} else {
				s.log.Info("session: resubscribed to revocations", "channel", m.Channel)
			}
		case *redis.Message:
			var r Revocation
			if err := json.Unmarshal([]byte(m.Payload), &r); err != nil {
				s.log.Warn("session: malformed revocation message", "err", err)
				continue
			}
			s.onRevoke(r)
		}
	}
}

// Close ends the subscription Start began and waits for OnRevoke calls in
// flight. It does not close the Redis client, which the caller owns.
func (s *RedisStore) Close() error {
	s.mu.Lock()
	sub, done := s.sub, s.done
	s.sub = nil
	s.mu.Unlock()
	if sub == nil {
		return nil
	}
	err := sub.Close()
	<-done
	return err
}
