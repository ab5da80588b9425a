package respcache

import (
	"container/list"
	"context"
	"sync"
	"time"
)

// Memory is an in-process Store bounded by the bytes it holds: when a new
// entry would pass MaxBytes, the least recently used entries go first.
// Expired entries are dropped when met.
type Memory struct {
	// MaxBytes bounds the keys and values held.
	MaxBytes int64
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	mu    sync.Mutex
	items map[string]*list.Element
	lru   list.List // front: most recently used
	bytes int64
}

type memItem struct {
	key     string
	value   []byte
	expires time.Time
}

func (m *Memory) now() time.Time {
	if m.Now != nil {
		return m.Now()
	}
	return time.Now()
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) ([]byte, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	el, ok := m.items[key]
	if !ok {
		return nil, false, nil
	}
	it := el.Value.(*memItem)
	if !m.now().Before(it.expires) {
		m.remove(el)
		return nil, false, nil
	}
	m.lru.MoveToFront(el)
	return it.value, true, nil
}

// Set implements Store. A value larger than MaxBytes is not stored.
func (m *Memory) Set(_ context.Context, key string, value []byte, ttl time.Duration) error {
	size := int64(len(key) + len(value))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.items == nil {
		m.items = map[string]*list.Element{}
	}
	if el, ok := m.items[key]; ok {
		m.remove(el)
	}
	if size > m.MaxBytes {
		return nil
	}
	for m.bytes+size > m.MaxBytes {
		m.remove(m.lru.Back())
	}
	m.items[key] = m.lru.PushFront(&memItem{key: key, value: value, expires: m.now().Add(ttl)})
	m.bytes += size
	return nil
}

func (m *Memory) remove(el *list.Element) {
	it := m.lru.Remove(el).(*memItem)
	delete(m.items, it.key)
	m.bytes -= int64(len(it.key) + len(it.value))
}

// Len is the number of entries held, expired ones included until met.
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.items)
}
