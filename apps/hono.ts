// A small Hono app served unchanged: routing, path parameters, JSON, middleware.
//   npx serve apps/hono.ts   then   curl localhost:8000/books/2
import { Hono } from 'hono';

interface Book {
  id: number;
  title: string;
}

const books: Book[] = [
  { id: 1, title: 'Moby-Dick' },
  { id: 2, title: 'Twenty Thousand Leagues Under the Seas' },
];

const app = new Hono();

// Middleware: time every request and say so in a header.
app.use('*', async (c, next) => {
  const started = performance.now();
  await next();
  c.header('server-timing', `app;dur=${(performance.now() - started).toFixed(2)}`);
});

app.get('/', (c) => c.text('Hono on narwhal'));
app.get('/books', (c) => c.json(books));
app.get('/books/:id', (c) => {
  const book = books.find((b) => b.id === Number(c.req.param('id')));
  return book ? c.json(book) : c.json({ error: 'no such book' }, 404);
});
app.post('/books', async (c) => {
  const { title } = await c.req.json<{ title?: unknown }>();
  if (typeof title !== 'string' || title === '') return c.json({ error: 'title is required' }, 400);
  const book = { id: books.length + 1, title };
  books.push(book);
  return c.json(book, 201);
});

export default app;
