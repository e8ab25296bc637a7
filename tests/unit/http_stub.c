/*
 * http_stub: a scripted HTTP/1.1 server thread for unit tests.
 *
 * One poll() loop over the listening socket, a stop pipe and up to 16
 * connections. A request is complete when its head ("\r\n\r\n") and
 * Content-Length bytes of body have arrived (chunked bodies are not
 * supported: libcurl sends Content-Length for the bodies we post). Each
 * complete request is recorded, takes the next scripted response and is
 * answered on its connection, at once or when its delay has passed. It
 * listens on 127.0.0.1 and nowhere else, and never connects anywhere.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http_stub.h"

#define STUB_CONNS 16
#define STUB_RECORDS 256
#define STUB_REQ_MAX (4u * 1024u * 1024u)

struct script {
	struct script *next;
	int status;
	char *headers;
	char *body;
	size_t body_len;
	unsigned delay_ms;
};

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
	struct script *pending;	/* answer waiting for its delay */
	size_t pending_len;	/* request bytes it answers */
	long long due_ms;
};

struct http_stub {
	int listen_fd;
	int stop_pipe[2];
	unsigned port;
	char base[64];
	pthread_t thread;

	pthread_mutex_t lock;
	pthread_cond_t recorded;
	struct script *head, *tail;
	struct http_stub_request reqs[STUB_RECORDS];
	size_t nreqs;
	size_t accepts;

	struct conn conns[STUB_CONNS];
};

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *
dupn(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (!p)
		abort();
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void
http_stub_push(struct http_stub *stub, const struct http_stub_response *r)
{
	struct script *s = calloc(1, sizeof(*s));
	size_t blen = r->body ? (r->body_len ? r->body_len : strlen(r->body)) : 0;

	if (!s)
		abort();
	s->status = r->status;
	s->headers = dupn(r->headers ? r->headers : "", r->headers ? strlen(r->headers) : 0);
	s->body = dupn(r->body ? r->body : "", blen);
	s->body_len = blen;
	s->delay_ms = r->delay_ms;
	pthread_mutex_lock(&stub->lock);
	if (stub->tail)
		stub->tail->next = s;
	else
		stub->head = s;
	stub->tail = s;
	pthread_mutex_unlock(&stub->lock);
}

void
http_stub_answer(struct http_stub *stub, int status, const char *headers, const char *body)
{
	struct http_stub_response r = { .status = status, .headers = headers, .body = body };

	http_stub_push(stub, &r);
}

static struct script *
script_next(struct http_stub *stub)
{
	struct script *s;

	pthread_mutex_lock(&stub->lock);
	s = stub->head;
	if (s) {
		stub->head = s->next;
		if (!stub->head)
			stub->tail = NULL;
	}
	pthread_mutex_unlock(&stub->lock);
	if (!s) {
		static const char nothing[] = "no scripted response";

		s = calloc(1, sizeof(*s));
		if (!s)
			abort();
		s->status = 404;
		s->headers = dupn("", 0);
		s->body = dupn(nothing, sizeof(nothing) - 1);
		s->body_len = sizeof(nothing) - 1;
	}
	return s;
}

static void
script_free(struct script *s)
{
	if (!s)
		return;
	free(s->headers);
	free(s->body);
	free(s);
}

static void
conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
	script_free(c->pending);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;	/* the client went away (e.g. it capped the body) */
		p += w;
		n -= (size_t)w;
	}
}

/* Answer and drop the request bytes it answers. */
static void
respond(struct conn *c)
{
	struct script *s = c->pending;
	char head[512];
	int n;

	n = snprintf(head, sizeof(head), "HTTP/1.1 %d Stub\r\nContent-Length: %zu\r\n",
	    s->status, s->body_len);
	send_all(c->fd, head, (size_t)n);
	send_all(c->fd, s->headers, strlen(s->headers));
	send_all(c->fd, "\r\n", 2);
	send_all(c->fd, s->body, s->body_len);
	memmove(c->buf, c->buf + c->pending_len, c->len - c->pending_len);
	c->len -= c->pending_len;
	script_free(s);
	c->pending = NULL;
	c->pending_len = 0;
}

static size_t
content_length(const char *head, size_t head_len)
{
	const char *p = head;
	const char *end = head + head_len;

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		size_t n = eol ? (size_t)(eol - p) : (size_t)(end - p);

		if (n > 15 && strncasecmp(p, "Content-Length:", 15) == 0)
			return strtoul(p + 15, NULL, 10);
		p += n + 1;
	}
	return 0;
}

/* A whole request in the buffer? Record it and take its answer. */
static void
try_request(struct http_stub *stub, struct conn *c)
{
	char *hend, *sp1, *sp2, *eol;
	size_t head_len, body_len, total;
	struct http_stub_request *r;

	if (c->pending || c->len == 0)
		return;
	hend = memmem(c->buf, c->len, "\r\n\r\n", 4);
	if (!hend)
		return;
	head_len = (size_t)(hend - c->buf) + 4;
	body_len = content_length(c->buf, head_len);
	if (body_len > STUB_REQ_MAX)
		return;
	total = head_len + body_len;
	if (c->len < total)
		return;

	eol = memmem(c->buf, head_len, "\r\n", 2);
	sp1 = memchr(c->buf, ' ', (size_t)(eol - c->buf));
	sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;

	pthread_mutex_lock(&stub->lock);
	if (stub->nreqs < STUB_RECORDS) {
		r = &stub->reqs[stub->nreqs];
		if (sp1 && (size_t)(sp1 - c->buf) < sizeof(r->method))
			memcpy(r->method, c->buf, (size_t)(sp1 - c->buf));
		r->target = sp2 ? dupn(sp1 + 1, (size_t)(sp2 - sp1 - 1)) : dupn("", 0);
		r->headers = dupn(eol + 2, (size_t)(hend + 2 - (eol + 2)));
		r->body = dupn(c->buf + head_len, body_len);
		r->body_len = body_len;
		stub->nreqs++;
		pthread_cond_broadcast(&stub->recorded);
	}
	pthread_mutex_unlock(&stub->lock);

	c->pending = script_next(stub);
	c->pending_len = total;
	c->due_ms = now_ms() + c->pending->delay_ms;
	if (c->pending->delay_ms == 0)
		respond(c);
}

static void
conn_read(struct http_stub *stub, struct conn *c)
{
	ssize_t n;

	if (c->cap - c->len < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 65536;
		char *nb;

		if (cap > STUB_REQ_MAX + 65536) {
			conn_close(c);
			return;
		}
		nb = realloc(c->buf, cap);
		if (!nb)
			abort();
		c->buf = nb;
		c->cap = cap;
	}
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		conn_close(c);
		return;
	}
	c->len += (size_t)n;
	try_request(stub, c);
}

static void *
stub_main(void *p)
{
	struct http_stub *stub = p;

	for (;;) {
		struct pollfd pfd[STUB_CONNS + 2];
		int map[STUB_CONNS + 2];
		nfds_t n = 0;
		long long now = now_ms(), wake = now + 1000;
		int timeout;

		pfd[n] = (struct pollfd){ .fd = stub->stop_pipe[0], .events = POLLIN };
		map[n++] = -1;
		pfd[n] = (struct pollfd){ .fd = stub->listen_fd, .events = POLLIN };
		map[n++] = -2;
		for (int i = 0; i < STUB_CONNS; i++) {
			struct conn *c = &stub->conns[i];

			if (c->fd < 0)
				continue;
			if (c->pending && c->due_ms <= now) {
				respond(c);
				try_request(stub, c);
				if (c->fd < 0)
					continue;
			}
			if (c->pending && c->due_ms < wake)
				wake = c->due_ms;
			pfd[n] = (struct pollfd){ .fd = c->fd, .events = POLLIN };
			map[n++] = i;
		}
		timeout = wake > now ? (int)(wake - now) : 0;
		if (poll(pfd, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents)
			break;
		if (pfd[1].revents & POLLIN) {
			int fd = accept(stub->listen_fd, NULL, NULL);

			if (fd >= 0) {
				int slot = -1;

				for (int i = 0; i < STUB_CONNS; i++)
					if (stub->conns[i].fd < 0) {
						slot = i;
						break;
					}
				if (slot < 0) {
					close(fd);
				} else {
					stub->conns[slot].fd = fd;
					pthread_mutex_lock(&stub->lock);
					stub->accepts++;
					pthread_mutex_unlock(&stub->lock);
				}
			}
		}
		for (nfds_t i = 2; i < n; i++) {
			struct conn *c = &stub->conns[map[i]];

			if (c->fd < 0 || !pfd[i].revents)
				continue;
			if (c->pending && !(pfd[i].revents & (POLLHUP | POLLERR))) {
				/* Hold further bytes until the delayed answer is out;
				 * but notice a client that gave up. */
				char peek;
				ssize_t r = recv(c->fd, &peek, 1, MSG_PEEK | MSG_DONTWAIT);

				if (r == 0)
					conn_close(c);
				else if (c->len < c->cap)
					conn_read(stub, c);
				continue;
			}
			conn_read(stub, c);
		}
	}
	return NULL;
}

struct http_stub *
http_stub_start(void)
{
	struct http_stub *stub = calloc(1, sizeof(*stub));
	struct sockaddr_in sa = { .sin_family = AF_INET };
	socklen_t slen = sizeof(sa);
	int one = 1;

	if (!stub)
		return NULL;
	for (int i = 0; i < STUB_CONNS; i++)
		stub->conns[i].fd = -1;
	stub->stop_pipe[0] = stub->stop_pipe[1] = -1;
	pthread_mutex_init(&stub->lock, NULL);
	pthread_cond_init(&stub->recorded, NULL);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	stub->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (stub->listen_fd < 0 ||
	    setsockopt(stub->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
	    bind(stub->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(stub->listen_fd, 16) != 0 ||
	    getsockname(stub->listen_fd, (struct sockaddr *)&sa, &slen) != 0 ||
	    pipe(stub->stop_pipe) != 0)
		goto fail;
	stub->port = ntohs(sa.sin_port);
	snprintf(stub->base, sizeof(stub->base), "http://127.0.0.1:%u", stub->port);
	if (pthread_create(&stub->thread, NULL, stub_main, stub) != 0)
		goto fail;
	return stub;
fail:
	if (stub->listen_fd >= 0)
		close(stub->listen_fd);
	if (stub->stop_pipe[0] >= 0) {
		close(stub->stop_pipe[0]);
		close(stub->stop_pipe[1]);
	}
	free(stub);
	return NULL;
}

void
http_stub_stop(struct http_stub *stub)
{
	if (!stub)
		return;
	if (write(stub->stop_pipe[1], "x", 1) != 1)
		abort();
	pthread_join(stub->thread, NULL);
	for (int i = 0; i < STUB_CONNS; i++)
		if (stub->conns[i].fd >= 0)
			conn_close(&stub->conns[i]);
	close(stub->listen_fd);
	close(stub->stop_pipe[0]);
	close(stub->stop_pipe[1]);
	while (stub->head) {
		struct script *s = stub->head;

		stub->head = s->next;
		script_free(s);
	}
	for (size_t i = 0; i < stub->nreqs; i++) {
		free(stub->reqs[i].target);
		free(stub->reqs[i].headers);
		free(stub->reqs[i].body);
	}
	pthread_cond_destroy(&stub->recorded);
	pthread_mutex_destroy(&stub->lock);
	free(stub);
}

unsigned
http_stub_port(struct http_stub *stub)
{
	return stub->port;
}

const char *
http_stub_base(struct http_stub *stub)
{
	return stub->base;
}

size_t
http_stub_count(struct http_stub *stub)
{
	size_t n;

	pthread_mutex_lock(&stub->lock);
	n = stub->nreqs;
	pthread_mutex_unlock(&stub->lock);
	return n;
}

size_t
http_stub_accepts(struct http_stub *stub)
{
	size_t n;

	pthread_mutex_lock(&stub->lock);
	n = stub->accepts;
	pthread_mutex_unlock(&stub->lock);
	return n;
}

const struct http_stub_request *
http_stub_request(struct http_stub *stub, size_t i)
{
	const struct http_stub_request *r = NULL;

	pthread_mutex_lock(&stub->lock);
	if (i < stub->nreqs)
		r = &stub->reqs[i];
	pthread_mutex_unlock(&stub->lock);
	return r;
}

bool
http_stub_wait(struct http_stub *stub, size_t n, unsigned timeout_ms)
{
	struct timespec ts;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&stub->lock);
	while (stub->nreqs < n)
		if (pthread_cond_timedwait(&stub->recorded, &stub->lock, &ts) == ETIMEDOUT)
			break;
	ok = stub->nreqs >= n;
	pthread_mutex_unlock(&stub->lock);
	return ok;
}

const char *
http_stub_header(const struct http_stub_request *req, const char *name, char *buf, size_t size)
{
	size_t nlen = strlen(name);
	const char *p = req->headers;

	while (p && *p) {
		const char *eol = strstr(p, "\r\n");
		size_t n = eol ? (size_t)(eol - p) : strlen(p);

		if (n > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
			const char *v = p + nlen + 1;
			size_t vlen;

			while (*v == ' ' || *v == '\t')
				v++;
			vlen = (size_t)(p + n - v);
			if (vlen >= size)
				vlen = size - 1;
			memcpy(buf, v, vlen);
			buf[vlen] = '\0';
			return buf;
		}
		if (!eol)
			break;
		p = eol + 2;
	}
	return NULL;
}
