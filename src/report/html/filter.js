(function () {
  var group = document.getElementById('f-group');
  var student = document.getElementById('f-student');
  var count = document.getElementById('f-count');
  if (!group || !student || !count) { return; }
  function apply() {
    var shown = 0;
    document.querySelectorAll('#disagreements .group').forEach(function (g) {
      var inGroup = group.value === '' || g.getAttribute('data-group') === group.value;
      var any = false;
      g.querySelectorAll('.item').forEach(function (item) {
        var on = inGroup;
        if (on) {
          if (student.value !== '') {
            on = item.querySelector('.answer[data-student="' + student.value + '"]') !== null;
          }
        }
        item.hidden = !on;
        if (on) { shown += 1; any = true; }
      });
      g.hidden = !any;
    });
    count.textContent = shown + ' shown';
  }
  group.addEventListener('change', apply);
  student.addEventListener('change', apply);
  apply();
})();
