// The smallest narwhal app: GET / answers "Hello, World!".
export default {
  fetch(request: Request): Response {
    const { pathname } = new URL(request.url);
    if (pathname !== '/') return new Response('Not Found', { status: 404 });
    return new Response('Hello, World!', { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  },
};
