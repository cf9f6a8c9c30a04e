// Light or dark: the system's preference unless the admin picked one (kept in localStorage).
// Loaded as a classic script in <head> so the page never flashes the other theme.
(function () {
  const saved = localStorage.getItem('vigil-theme');
  if (saved === 'light' || saved === 'dark') document.documentElement.dataset.theme = saved;
  const current = () => document.documentElement.dataset.theme || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
  function label(button) {
    const next = current() === 'dark' ? 'light' : 'dark';
    button.setAttribute('aria-label', `Switch to ${next} theme`);
    button.querySelector('.theme-text').textContent = next === 'dark' ? 'Dark' : 'Light';
  }
  document.addEventListener('DOMContentLoaded', () => {
    const button = document.getElementById('theme');
    label(button);
    button.addEventListener('click', () => {
      const next = current() === 'dark' ? 'light' : 'dark';
      document.documentElement.dataset.theme = next;
      localStorage.setItem('vigil-theme', next);
      label(button);
      document.dispatchEvent(new Event('vigil-theme'));
    });
    matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
      label(button);
      document.dispatchEvent(new Event('vigil-theme'));
    });
  });
})();
