// Click a figure (or a figure drawn by a code cell) to open it at full size.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("figure img, div.cell_output img").forEach(function (img) {
    if (img.closest("a")) return;
    var link = document.createElement("a");
    link.href = img.getAttribute("src");
    link.className = "lensbox-enlarge";
    link.title = "Open the figure at full size";
    img.parentNode.insertBefore(link, img);
    link.appendChild(img);
  });
});
